/**
 * One partition on this instance: its lease and, while the lease is held, its engine (one term). The
 * coordinator (partition/coordinator.ts) decides when to acquire and when to hand over; the runner does
 * it, and reacts on its own when the lease is lost or Redis lost writes:
 *
 *   idle ──acquire──► starting ──► leader: new Engine (restore, claim, replay, read)
 *   leader ──handOver (rebalance, stop)──► stopping: drain, commit, release the lease ──► idle
 *   leader ──lease lost (a renewal, a fenced commit)──► drop the engine, commit nothing ──► idle
 *   leader ──Redis restarted or failed over──► drop the engine ──► idle, re-acquired at once (new term)
 *
 * With one partition this is the whole pipeline's leadership, as before partitions existed.
 */
import type { Redis } from 'ioredis';
import type { PipelineConfig } from '../config/load.js';
import { LeaseLostError, StateLostError } from '../errors.js';
import { Sampler } from '../inspect/sampler.js';
import { Lease } from '../lease/lease.js';
import { renewalLogger } from '../lease/renewalLog.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PartitionMetrics } from '../metrics/partitionMetrics.js';
import { CheckpointKeys } from '../redis/checkpointKeys.js';
import { serverRunId } from '../redis/serverId.js';
import { RedisStore } from '../store/redisStore.js';
import { withTimeout } from '../util/deadline.js';
import type { Logger } from '../util/log.js';
import { Engine } from './engine.js';

export type PartitionRole = 'idle' | 'starting' | 'leader' | 'stopping';

/** What every runner of an instance shares. */
export interface RunnerContext {
  /** The instance's connection for leases, membership and sampling (not the data path). */
  redis: Redis;
  /** The instance's ID: the owner of every lease it holds, and its membership ID. */
  owner: string;
  metrics: Metrics;
  partitionMetrics: PartitionMetrics;
  log: Logger;
  /** `streamshard reset -c FILE`, named in errors that need a reset. */
  resetCommand: string;
  metricsPort: () => number | null;
}

/** After the drain: the least time the lease release gets, even past its deadline. */
const RELEASE_MIN_MS = 500;

export class PartitionRunner {
  /** An unrecoverable error of this partition's term (a bug, a refused commit): the pipeline fails. */
  onFatal: (e: Error) => void = () => {};
  /** The partition became idle on its own (lease lost, state reload): the coordinator should look soon. */
  onIdle: () => void = () => {};
  /** The runner started or ended leading. */
  onChange: () => void = () => {};
  readonly lease: Lease;
  readonly keys: CheckpointKeys;
  /** Lag, stream lengths and checkpoint size of this partition, sampled while leading. */
  readonly sampler: Sampler;
  private engine: Engine | null = null;
  private state: PartitionRole = 'idle';
  /** The acquisition or hand-over in progress. */
  private transition: Promise<unknown> = Promise.resolve();
  /** The Redis server's run_id when the current term started (a restart or failover changes it). */
  private serverRunId: string | null = null;
  /** performance.now() since which the partition has been idle here. */
  private idleSince = performance.now();
  private closed = false;

  constructor(
    /** The partition's config (partition/scope.ts). */
    readonly config: PipelineConfig,
    private readonly ctx: RunnerContext,
  ) {
    const c = config;
    this.keys = CheckpointKeys.of(c);
    this.lease = new Lease(
      ctx.redis,
      { lease: this.keys.lease(), epoch: this.keys.epoch() },
      c.source.consumer,
      c.lease.ttl,
      ctx.owner,
    );
    this.lease.onLost = (holder) => void this.standDown(holder);
    this.lease.onRenewal = renewalLogger(this.log, c.redis.url, () => this.lease.readBudget());
    this.sampler = new Sampler(ctx.redis, this.keys, c, (e) =>
      this.log.debug({ err: e.message }, 'sampling the pipeline in Redis failed'),
    );
  }

  get index(): number {
    return this.config.partition.index;
  }

  get role(): PartitionRole {
    return this.state;
  }

  /** The running term's engine while leading, else null. */
  get current(): Engine | null {
    return this.state === 'leader' ? this.engine : null;
  }

  private get log(): Logger {
    return this.ctx.log;
  }

  /**
   * Tries once to acquire the lease and start a term; resolves whether this instance leads the partition
   * now. Rejects only when the lease could not be asked for (Redis unreachable): the caller retries.
   */
  acquire(reason: string, wantedSince: number): Promise<boolean> {
    if (this.state !== 'idle' || this.closed) return Promise.resolve(this.state === 'leader');
    this.state = 'starting';
    const attempt = this.tryLead(reason, Math.max(wantedSince, this.idleSince));
    this.transition = attempt.catch(() => {});
    return attempt;
  }

  /** @param waitingSince performance.now() since which this instance has wanted the partition */
  private async tryLead(reason: string, waitingSince: number): Promise<boolean> {
    let held: Awaited<ReturnType<Lease['tryAcquire']>>;
    try {
      held = await this.lease.tryAcquire();
    } catch (e) {
      this.state = 'idle';
      throw e;
    }
    if (!held.held || this.closed) {
      if (held.held) await this.lease.release(); // stopped meanwhile
      this.state = 'idle';
      return false;
    }
    const since = performance.now();
    const engine = this.newEngine(since - waitingSince);
    this.engine = engine;
    this.state = 'leader';
    try {
      this.serverRunId = await serverRunId(this.ctx.redis).catch(() => null);
      await engine.start(since);
    } catch (e) {
      if (this.engine === engine && this.state === 'leader')
        this.onFatal(e as Error); // e.g. a refused checkpoint
      else this.log.warn({ partition: this.index, err: (e as Error).message }, 'a term ended while starting');
      return false;
    }
    if (this.engine !== engine || this.state !== 'leader') return false; // lost again while starting
    this.sampler.start();
    this.onChange();
    this.ctx.partitionMetrics.acquired(this.index, since - waitingSince);
    const c = this.config;
    this.log.info(
      {
        pipeline: c.name,
        partition: this.index,
        reason,
        stream: c.source.stream,
        group: c.source.group,
        consumer: c.source.consumer,
        shards: c.shards,
        leaseEpoch: this.lease.epoch,
        metricsPort: this.ctx.metricsPort(),
        leaseWaitMs: Math.round(since - waitingSince),
        startMs: Math.round(performance.now() - since),
      },
      'ready',
    );
    return true;
  }

  private newEngine(waitedMs: number): Engine {
    const c = this.config;
    const { metrics, log, resetCommand } = this.ctx;
    metrics.leaseWaitSeconds.set(waitedMs / 1000);
    metrics.leaseTakeovers.inc();
    this.lease.startRenewing();
    const engine = new Engine(c, {
      lease: this.lease,
      fenceKeys: { lease: this.keys.lease(), applied: this.keys.applied() },
      store: (fence) => new RedisStore(c, fence, resetCommand),
      metrics,
      log: c.source.partitions > 1 ? log.child({ partition: this.index }) : log,
    });
    engine.onFatal = (e) => {
      if (this.engine !== engine) return;
      if (e instanceof LeaseLostError) void this.standDown(e.holder);
      else if (e instanceof StateLostError) void this.reload(e.message);
      else this.onFatal(e);
    };
    return engine;
  }

  /**
   * Gives the partition up gracefully: stops reading, commits what was read (within `ms`), releases the
   * lease so that the next owner acquires it at once. Waits for an acquisition in progress first.
   */
  async handOver(reason: string, ms: number): Promise<{ clean: boolean }> {
    const deadline = Date.now() + ms;
    await withTimeout(this.transition, ms);
    if (this.state !== 'leader') return { clean: this.state === 'idle' };
    const engine = this.engine as Engine;
    this.state = 'stopping';
    const started = performance.now();
    const done = (async () => {
      this.sampler.stop();
      const r = await engine.stop(Math.max(0, deadline - Date.now()));
      this.engine = null;
      const left = Math.max(RELEASE_MIN_MS, deadline - Date.now());
      if (this.ctx.redis.status === 'ready') await withTimeout(this.lease.release(), left);
      else this.lease.stopRenewing(); // unreachable: the lease lapses after its TTL
      this.becameIdle();
      const handOverMs = performance.now() - started;
      this.ctx.partitionMetrics.released(this.index, handOverMs);
      this.log.info(
        { partition: this.index, reason, clean: r.clean, handOverMs: Math.round(handOverMs) },
        'partition released',
      );
      return r;
    })();
    this.transition = done.catch(() => {});
    return done;
  }

  /** The lease went to another instance: drop the engine (nothing more is committed). */
  private async standDown(holder: string): Promise<void> {
    if (this.state !== 'leader') return;
    this.log.warn(
      { partition: this.index, holder },
      'lease lost to another instance; dropping uncommitted work',
    );
    await this.dropTerm(holder);
    this.ctx.partitionMetrics.lost(this.index);
    this.onIdle();
  }

  /**
   * Ends the term without committing more, so that a new one restores everything from Redis (the
   * coordinator re-acquires at once: the lease is still ours).
   */
  private async reload(why: string): Promise<void> {
    if (this.state !== 'leader' || this.closed) return;
    this.log.warn({ partition: this.index, why }, 'reloading all state from Redis in a new term');
    await this.dropTerm('(redis restarted)');
    this.onIdle();
  }

  private async dropTerm(holder: string): Promise<void> {
    this.state = 'stopping';
    this.sampler.stop();
    this.lease.stopRenewing();
    const engine = this.engine;
    this.engine = null;
    const done = engine?.abandon(holder) ?? Promise.resolve();
    this.transition = done.catch(() => {});
    await done;
    this.becameIdle();
  }

  private becameIdle(): void {
    this.state = 'idle';
    this.idleSince = performance.now();
    this.onChange();
  }

  /**
   * After a reconnect: if Redis restarted or failed over (its run_id changed), it may have lost the last
   * writes (`appendfsync everysec`, an async replica), and then the engine's memory is ahead of the
   * checkpoint and of the pending list. So the term ends and a new one restores everything from Redis —
   * the output stays consistent with whatever Redis kept. With nothing lost this only costs a restore.
   */
  async checkServer(): Promise<void> {
    if (this.state !== 'leader' || this.serverRunId === null) return;
    const now = await serverRunId(this.ctx.redis).catch(() => null);
    if (now === null || now === this.serverRunId || this.state !== 'leader') return;
    await this.reload(StateLostError.serverChanged(this.serverRunId, now).message);
  }

  /** No acquisition starts after this (stop in progress). */
  close(): void {
    this.closed = true;
  }
}

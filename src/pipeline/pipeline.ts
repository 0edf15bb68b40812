/**
 * The public facade: built from a config validated once at the door (`fromFile` loads and validates it;
 * `fromConfig` takes one `loadConfig` returned), serves metrics and health over HTTP, and runs
 * leadership terms:
 *
 *   standby ──lease acquired──► leader: new Engine (restore, claim, replay, read) ──lease lost──► standby
 *
 * Only the lease holder processes (lease/lease.ts). A standby polls the lease every ttl/4 and takes over
 * when it lapses; a leader that finds the lease taken (a renewal, or a fenced commit) drops its engine
 * without committing and stands by again.
 */
import type { Redis } from 'ioredis';
import { CheckpointKeys } from '../redis/checkpointKeys.js';
import { loadConfig, type PipelineConfig } from '../config/load.js';
import { LeaseLostError, StateLostError } from '../errors.js';
import { Lease } from '../lease/lease.js';
import { renewalLogger } from '../lease/renewalLog.js';
import { Sampler } from '../inspect/sampler.js';
import { Metrics } from '../metrics/metrics.js';
import { registerStateGauges } from '../metrics/stateGauges.js';
import { type HttpEndpoint, startHttp } from '../metrics/server.js';
import { DeadLetterCache } from '../metrics/status/recentDeadLetters.js';
import { StatusReporter } from '../metrics/status/statusReport.js';
import { closeRedis, connectRedis, openRedis, redactUrl, waitForRedis } from '../redis/connect.js';
import { serverRunId } from '../redis/serverId.js';
import { maskSecrets } from '../redis/url.js';
import { RedisStore } from '../store/redisStore.js';
import { withTimeout } from '../util/deadline.js';
import { createLogger, type Logger } from '../util/log.js';
import { Engine } from './engine.js';
import { StatsLog } from './statsLog.js';

export interface PipelineOptions {
  logger?: Logger;
  /** Serve /metrics, /healthz, /readyz and the status page (/, /api/status) (default true). */
  http?: boolean;
  /** The pipeline file, named in messages that tell which command to run (`streamshard reset -c FILE`). */
  configFile?: string;
}

export type Role = 'starting' | 'standby' | 'leader' | 'stopped';

export class Pipeline {
  private engine: Engine | null = null;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly leaseRedis: Redis;
  private readonly lease: Lease;
  private readonly keys: CheckpointKeys;
  /** Lag, stream lengths and checkpoint size, sampled in the background while leading (inspect/sampler.ts). */
  private readonly sampler: Sampler;
  private readonly stats: StatsLog;
  /** The status page's JSON (GET /api/status). */
  private readonly status: StatusReporter;
  private http: HttpEndpoint | null = null;
  private stopped: Promise<{ clean: boolean }> | null = null;
  private role: Role = 'starting';
  private standbyTimer: NodeJS.Timeout | null = null;
  private rejectFailed: (e: Error) => void = () => {};
  /** performance.now() at start(), for the first term's recovery time. */
  private startedAt = 0;
  /** The Redis server's run_id when the current term started (a restart or failover changes it). */
  private serverRunId: string | null = null;
  /** True while a lease poll (and the term start it may lead to) runs. */
  private attempting = false;
  /** Leadership terms started by this process. */
  private terms = 0;
  /** performance.now() since which this instance has been waiting for the lease (start or stand-down). */
  private waitingSince = 0;
  /** The start-up in progress (waits for Redis, first lease attempt); null before start(). */
  private starting: Promise<void> | null = null;
  /** Aborts start-up's wait for Redis when the pipeline is stopped meanwhile. */
  private readonly startAbort = new AbortController();
  /** Rejects when the engine fails; never resolves otherwise. */
  readonly failed: Promise<never>;

  private constructor(
    readonly config: PipelineConfig,
    private readonly opts: PipelineOptions,
  ) {
    this.log = opts.logger ?? createLogger(config.name);
    const c = config;
    const probe = {
      groupInfo: () => this.engine?.groupInfo() ?? Promise.resolve(null),
      inFlight: (s: number) => this.engine?.inFlight(s) ?? 0,
      utilization: (s: number) => this.engine?.utilization(s) ?? 0,
      workerHeap: (s: number) => this.engine?.workerHeap(s) ?? [0, 0],
      redisConnected: () => this.engine?.readiness().redis ?? this.leaseRedis.status === 'ready',
      isLeader: () => this.role === 'leader',
      leaseEpoch: () => this.lease.epoch,
    };
    this.metrics = new Metrics(c.metrics.prefix, c.shards, probe, c.metrics.eventTypes);
    registerStateGauges(this.metrics.registry, c.metrics.prefix, c.shards, {
      shard: (s) => this.engine?.shardState(s) ?? null,
      sample: () => (this.role === 'leader' ? this.sampler.latest : null),
    });
    this.leaseRedis = connectRedis({
      url: c.redis.url,
      name: `streamshard:${c.name}:lease`,
      connectTimeoutMs: c.redis.connectTimeout,
      onState: (state) => {
        if (state === 'ready') void this.checkServer();
      },
    });
    const keys = CheckpointKeys.of(c);
    this.keys = keys;
    this.sampler = new Sampler(this.leaseRedis, keys, c, (e) =>
      this.log.debug({ err: e.message }, 'sampling the pipeline in Redis failed'),
    );
    this.stats = new StatsLog(this.metrics, () => this.sampler.latest, this.log, c.metrics.statsEvery);
    this.status = new StatusReporter(
      c,
      this.metrics,
      {
        role: () => this.role,
        leaseEpoch: () => this.lease.epoch,
        shard: (s) => {
          const e = this.engine;
          const state = e?.shardState(s) ?? null;
          if (e === null || state === null) return null;
          return { ...state, inFlight: e.inFlight(s), busyMs: e.busyMs(s) };
        },
        sample: () => (this.role === 'leader' ? this.sampler.latest : null),
      },
      new DeadLetterCache(this.leaseRedis, c.deadLetter.stream, c.key.field),
    );
    this.lease = new Lease(
      this.leaseRedis,
      { lease: keys.lease(), epoch: keys.epoch() },
      c.source.consumer,
      c.lease.ttl,
    );
    this.lease.onLost = (holder) => void this.standDown(holder);
    this.lease.onRenewal = renewalLogger(this.log, c.redis.url, () => this.lease.readBudget());
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
  }

  static fromFile(file: string, opts: PipelineOptions = {}): Pipeline {
    return new Pipeline(loadConfig(file), { configFile: file, ...opts });
  }

  /** For a config loaded with `loadConfig` (validated there). */
  static fromConfig(config: PipelineConfig, opts: PipelineOptions = {}): Pipeline {
    return new Pipeline(config, opts);
  }

  /**
   * Starts serving HTTP (so /healthz answers during restore), then either becomes the leader (restores and
   * starts reading; resolves once reading) or, when another instance holds the lease, resolves as a
   * standby that keeps trying in the background.
   */
  async start(): Promise<void> {
    const c = this.config;
    this.startedAt = performance.now();
    this.waitingSince = this.startedAt;
    if (this.opts.http !== false) {
      this.http = await startHttp(
        this.metrics.registry,
        () => this.readiness(),
        c.metrics.host,
        c.metrics.port,
        () => this.status.report(),
      );
    }
    this.starting = this.connectAndLead();
    await this.starting;
  }

  private async connectAndLead(): Promise<void> {
    const c = this.config;
    await waitForRedis({
      url: c.redis.url,
      name: `streamshard:${c.name}:lease`,
      connectTimeoutMs: c.redis.connectTimeout,
      startTimeoutMs: c.redis.startTimeout,
      signal: this.startAbort.signal,
      onRetry: (err, attempt, retryInMs) =>
        this.log.warn(
          { redis: redactUrl(c.redis.url), err, attempt, retryInMs },
          'cannot connect to Redis; retrying',
        ),
    });
    try {
      await openRedis(this.leaseRedis);
    } catch (e) {
      this.leaseRedis.disconnect();
      const why = maskSecrets((e as Error).message, c.redis.url);
      throw new Error(`cannot connect to Redis at ${redactUrl(c.redis.url)}: ${why}`, { cause: e });
    }
    if (this.stopped !== null) return;
    this.attempting = true;
    let led: boolean;
    try {
      led = await this.tryLead();
    } finally {
      this.attempting = false;
    }
    if (!led || this.role !== 'leader') this.standBy();
  }

  /** One attempt: acquires the lease and, if held, starts a leadership term. */
  private async tryLead(): Promise<boolean> {
    const state = await this.lease.tryAcquire();
    if (!state.held) {
      if (this.role !== 'standby') {
        this.log.info(
          {
            holder: state.holder,
            lapsesInMs: state.ttlMs,
            consumer: this.config.source.consumer,
            metricsPort: this.http?.port ?? null,
          },
          'standby',
        );
        this.role = 'standby';
      }
      return false;
    }
    if (this.stopped !== null) return false; // stopped meanwhile: start no term (stop() releases the lease)
    await this.lead(performance.now());
    return true;
  }

  private async lead(since: number): Promise<void> {
    const c = this.config;
    this.terms++;
    this.metrics.leaseWaitSeconds.set((since - this.waitingSince) / 1000);
    this.serverRunId = await this.runId();
    this.metrics.leaseTakeovers.inc();
    this.lease.startRenewing();
    const resetCommand = `streamshard reset -c ${this.opts.configFile ?? '<pipeline file>'}`;
    const engine = new Engine(c, {
      lease: this.lease,
      fenceKeys: { lease: this.keys.lease(), applied: this.keys.applied() },
      store: (fence) => new RedisStore(c, fence, resetCommand),
      metrics: this.metrics,
      log: this.log,
    });
    engine.onFatal = (e) => {
      if (e instanceof LeaseLostError) void this.standDown(e.holder);
      else if (e instanceof StateLostError) void this.reloadTerm(e.message);
      else this.rejectFailed(e);
    };
    this.engine = engine;
    this.role = 'leader';
    await engine.start(since);
    this.sampler.start();
    this.stats.start();
    this.log.info(
      {
        pipeline: c.name,
        stream: c.source.stream,
        group: c.source.group,
        consumer: c.source.consumer,
        shards: c.shards,
        leaseEpoch: this.lease.epoch,
        metricsPort: this.http?.port ?? null,
        leaseWaitMs: Math.round(since - this.waitingSince),
        startMs: Math.round(performance.now() - since),
      },
      'ready',
    );
  }

  /**
   * Polls the lease every ttl/4 until acquired (or stopped). At most one poll is scheduled or running at a
   * time, so a stand-down racing a failing start cannot start two engines.
   */
  private standBy(firstDelay?: number): void {
    if (this.stopped !== null || this.standbyTimer !== null || this.attempting) return;
    const every = Math.max(50, Math.floor(this.config.lease.ttl / 4));
    this.standbyTimer = setTimeout(() => {
      this.standbyTimer = null;
      this.attempting = true;
      this.tryLead()
        .finally(() => {
          this.attempting = false;
        })
        .then(
          (led) => {
            if (!led || this.role !== 'leader') this.standBy(); // (lost again while starting)
          },
          (e: Error) => {
            if (this.stopped !== null) return;
            if (this.role === 'leader') {
              this.rejectFailed(e); // the term's start-up failed (e.g. a refused checkpoint)
              return;
            }
            this.log.warn({ err: e.message }, 'lease check failed; retrying');
            this.standBy();
          },
        );
    }, firstDelay ?? every);
  }

  private runId(): Promise<string | null> {
    return serverRunId(this.leaseRedis).catch(() => null);
  }

  /**
   * After a reconnect: if Redis restarted or failed over (its run_id changed), it may have lost the last
   * writes (`appendfsync everysec`, an async replica), and then our in-memory state is ahead of the
   * checkpoint and of the pending list. So the term ends and a new one restores everything from Redis —
   * the output stays consistent with whatever Redis kept. With nothing lost this only costs a restore.
   */
  private async checkServer(): Promise<void> {
    if (this.role !== 'leader' || this.serverRunId === null) return;
    const now = await this.runId();
    if (now === null || now === this.serverRunId || this.role !== 'leader') return;
    await this.reloadTerm(StateLostError.serverChanged(this.serverRunId, now).message);
  }

  /** This instance no longer leads: its background sampling and stats lines stop. */
  private leadingEnded(): void {
    this.sampler.stop();
    this.stats.stop();
  }

  /** Ends the term without committing more and starts a new one from what Redis has. */
  private async reloadTerm(why: string): Promise<void> {
    if (this.role !== 'leader' || this.stopped !== null) return;
    this.log.warn({ why }, 'reloading all state from Redis in a new term');
    this.role = 'standby';
    this.leadingEnded();
    this.waitingSince = performance.now();
    this.lease.stopRenewing();
    const engine = this.engine;
    this.engine = null;
    await engine?.abandon('(redis restarted)');
    if (this.stopped === null) this.standBy(0);
  }

  /** The lease went to another instance: drop the engine (nothing more is committed) and stand by. */
  private async standDown(holder: string): Promise<void> {
    if (this.role !== 'leader' || this.stopped !== null) return;
    this.role = 'standby';
    this.leadingEnded();
    this.waitingSince = performance.now();
    this.lease.stopRenewing();
    this.log.warn({ holder }, 'lease lost to another instance; dropping uncommitted work and standing by');
    const engine = this.engine;
    this.engine = null;
    await engine?.abandon(holder);
    this.standBy();
  }

  private readiness(): { role: Role; checks: Record<string, boolean> } {
    const checks = this.engine?.readiness() ?? { redis: this.leaseRedis.status === 'ready' };
    return { role: this.role, checks };
  }

  get currentRole(): Role {
    return this.role;
  }

  get metricsPort(): number | null {
    return this.http?.port ?? null;
  }

  get registry() {
    return this.metrics.registry;
  }

  /**
   * Graceful stop within `shutdown.timeout`, then hands the lease over; idempotent. Every step has a
   * deadline, also while Redis is unreachable (commands would wait in ioredis' queue forever): the drain
   * gets `shutdown.timeout`, the hand-over and closing get what is left of it, at least
   * {@link HANDOVER_MIN_MS}.
   */
  stop(): Promise<{ clean: boolean }> {
    if (this.stopped === null) {
      this.stopped = (async () => {
        const deadline = Date.now() + this.config.shutdown.timeout;
        const left = () => Math.max(0, deadline - Date.now());
        this.startAbort.abort();
        if (this.standbyTimer !== null) clearTimeout(this.standbyTimer);
        // A start (or lease poll) still running may yet create an engine: let it finish first.
        const startDone = await withTimeout(this.starting?.catch(() => {}) ?? Promise.resolve(), left());
        const engine = this.engine;
        let r = engine !== null ? await engine.stop(left()) : { clean: true };
        if (!startDone) r = { clean: false };
        this.role = 'stopped';
        this.leadingEnded();
        const handOver = Math.max(HANDOVER_MIN_MS, left());
        if (this.leaseRedis.status === 'ready') await withTimeout(this.lease.release(), handOver);
        else this.lease.stopRenewing(); // unreachable: the lease lapses after its TTL
        await closeRedis(this.leaseRedis, handOver);
        if (this.http !== null) await withTimeout(this.http.close(), HANDOVER_MIN_MS);
        this.log.info(
          { clean: r.clean, ...(await this.stats.summary()) },
          r.clean ? 'stopped' : 'stopped with uncommitted batches left pending',
        );
        return r;
      })();
    }
    return this.stopped;
  }
}

/** After the drain: the least time the lease hand-over and closing get, even past `shutdown.timeout`. */
const HANDOVER_MIN_MS = 500;

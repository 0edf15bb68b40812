/**
 * The engine runs one leadership term: it wires the steps and tells the term's story, top to bottom.
 *
 *   start   Recovery.open (connect, check, restore each shard) → Recovery.claimOthers → Reader.start
 *           + timers: trim the input, verify the group's incarnation, tick quiet lanes
 *   run     Reader ──route──► lanes' open batches ──FlushPolicy──► workers ──Committer──► Store.commit
 *           a commit done → FlushPolicy.afterCommit (group commit) → Reader.signalCapacity (backpressure)
 *           a worker crashed → Recovery.restartWorker → resubmitted batches back to the Committer
 *   end     stop (drain and commit what is read) | abandon (lease lost: commit nothing more) | fail
 *
 * It trusts its config (validated at the door by `Pipeline`) and talks to Redis only through a Store
 * (store/store.ts).
 */
import { randomBytes } from 'node:crypto';
import type { PipelineConfig } from '../config/load.js';
import { LeaseLostError, StaleStateError } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { shardKeyGroups } from '../routing/hash.js';
import { Router } from '../routing/router.js';
import type { ShardOutput } from '../shard/protocol.js';
import type { CommitFence, Store } from '../store/store.js';
import { withTimeout } from '../util/deadline.js';
import type { Logger } from '../util/log.js';
import { Committer } from './committer.js';
import { FlushPolicy } from './flushPolicy.js';
import { Guards } from './guards.js';
import { Housekeeping } from './housekeeping.js';
import type { Lane } from './lane.js';
import { Reader } from './reader.js';
import { Recovery } from './recovery.js';
import { Term, type TermLease } from './term.js';

/** After the drain's deadline: the least time closing the workers and the connections gets. */
const CLOSE_MIN_MS = 500;

export interface EngineParts {
  /** The lease the term holds (lease/lease.ts). */
  lease: TermLease;
  /** The lease key and the key of applied commit IDs, which every commit checks (commit/applyOps.ts). */
  fenceKeys: { lease: string; applied: string };
  /** Builds the term's store; it reads new entries only while `fence()` holds (store/redisStore.ts). */
  store: (fence: () => CommitFence) => Store;
  metrics: Metrics | null;
  log: Logger;
  /** The shard worker module; a stand-in in unit tests. @defaultValue shard/worker.js */
  worker?: string;
}

export class Engine {
  /** Called once if the term hits an unrecoverable error (a bug, a refused commit) or lost its lease. */
  onFatal: (e: Error) => void = () => {};
  private readonly term: Term;
  private readonly guards: Guards;
  private readonly policy: FlushPolicy;
  private readonly committer: Committer;
  private readonly recovery: Recovery;
  private readonly reader: Reader;
  private readonly router: Router;
  private readonly openBatches: Lane['batch'][] = [];
  private readonly housekeeping: Housekeeping;
  private groupPresent = false;
  /** The term's fence, filled in at start (the lease's token is known then). */
  private readonly fence: CommitFence = { leaseKey: '', appliedKey: '', token: '', term: '' };
  private readonly fenceKeys: EngineParts['fenceKeys'];

  constructor(config: PipelineConfig, parts: EngineParts) {
    const c = config;
    this.fenceKeys = parts.fenceKeys;
    const fence = this.fence;
    const store = parts.store(() => fence);
    const term = new Term(c, store, parts.lease, parts.log, parts.metrics, (e) => this.onFatal(e));
    this.term = term;
    this.guards = new Guards(term);
    store.onConnection((which, up, err) => this.connectionChanged(which, up, err));
    this.router = new Router(c.key.field, c.keyGroups, c.shards, c.source.maxEntryBytes, c.partition);
    this.policy = new FlushPolicy(
      term,
      windowIdleClose(c),
      (l, n, o, b) => this.committer.enqueue(l, n, o, b),
      () => this.reader.stalled,
    );
    this.committer = new Committer(term, this.guards, fence, {
      onCrash: (lane, err) => this.restartWorker(lane, err),
      onCommitted: (lane, out) => this.committed(lane, out),
    });
    const keyGroups = shardKeyGroups(c);
    this.recovery = new Recovery(term, this.guards, keyGroups, parts.worker);
    this.housekeeping = new Housekeeping(term, (e) => this.stale(e));
    this.reader = new Reader(term, this.guards, this.policy, this.router, this.openBatches, (e) =>
      this.stale(e),
    );
  }

  /**
   * Connects, restores every shard from its checkpoint, claims the pending entries of other (dead)
   * consumers, then starts reading (own pending entries first). The caller holds the lease.
   *
   * @param since performance.now() when this term's start-up began, for the recovery-time metric
   */
  async start(since = performance.now()): Promise<void> {
    const { term } = this;
    term.recoveringSince = since;
    Object.assign(this.fence, {
      leaseKey: this.fenceKeys.lease,
      appliedKey: this.fenceKeys.applied,
      token: term.lease.token,
      term: `${term.lease.token}/${randomBytes(4).toString('hex')}`,
    });
    await this.recovery.open();
    this.groupPresent = true;
    for (const lane of term.lanes) this.openBatches.push(lane.batch);
    await this.recovery.claimOthers();
    if (term.stopping) return; // stopped while starting: read nothing
    term.running = true;
    this.reader.start();
    this.housekeeping.start();
    this.policy.start();
  }

  private connectionChanged(which: string, up: boolean, err?: Error): void {
    const { term } = this;
    if (!up && !term.stopping)
      term.log.warn({ connection: which, err: err?.message }, 'redis connection lost');
    if (up && term.running) {
      term.log.info({ connection: which }, 'redis connection restored');
      this.guards.reconnected(); // the next read and commit first check it is the same server
    }
  }

  /** A lane's output was committed: group commit goes on, and the reader may have room again. */
  private committed(lane: Lane, out: ShardOutput): void {
    this.policy.afterCommit(lane, out);
    this.reader.signalCapacity();
  }

  private async restartWorker(lane: Lane, err: Error): Promise<void> {
    const batches = await this.recovery.restartWorker(lane, err);
    for (const b of batches) this.committer.enqueue(lane, b.count, b.output, true);
    this.policy.flush(lane);
  }

  /** The state belongs to another incarnation of the stream or group: stop reading and fail. */
  private stale(e: StaleStateError): void {
    this.groupPresent = false;
    this.term.running = false; // no further reads; nothing more is committed once failed
    this.reader.signalCapacity();
    this.term.fail(e);
  }

  private stopTimers(): void {
    this.housekeeping.stop();
    this.policy.stop();
  }

  /**
   * Stops at once without committing anything more (the lease is lost: another instance owns the
   * pipeline now and will re-read whatever we did not commit). Workers and connections are closed.
   */
  async abandon(holder: string): Promise<void> {
    const { term } = this;
    if (term.failure === null) term.failure = new LeaseLostError(holder);
    term.stopping = true;
    term.running = false;
    this.stopTimers();
    this.reader.signalCapacity();
    term.store.disconnectReader();
    await Promise.all(term.lanes.map((l) => l.close().catch(() => {})));
    term.store.disconnect();
  }

  /**
   * Graceful stop: stop reading, process and commit everything already read, close workers and
   * connections. Whatever is not committed by `timeoutMs` stays pending for the next start.
   */
  async stop(timeoutMs: number): Promise<{ clean: boolean }> {
    const { term } = this;
    if (term.stopping) return { clean: false };
    term.stopping = true;
    term.deadline = Date.now() + timeoutMs;
    const left = () => Math.max(0, term.deadline - Date.now());
    term.running = false;
    this.stopTimers();
    this.reader.signalCapacity();
    // A blocking read in flight ends within `block` ms; entries it returns are flushed below.
    const readDone = await withTimeout(
      this.reader.done(),
      Math.min(timeoutMs, term.config.source.block + 1000),
    );
    if (!readDone) term.store.disconnectReader();
    this.policy.stop();
    this.policy.flushAll();
    const drained = await withTimeout(Promise.all(term.lanes.map((l) => l.drained())), left());
    // Each step has a deadline: with Redis unreachable a QUIT would wait in ioredis' queue forever.
    await withTimeout(Promise.all(term.lanes.map((l) => l.close())), Math.max(CLOSE_MIN_MS, left()));
    await term.store.close(Math.max(CLOSE_MIN_MS, left()));
    return { clean: drained && term.failure === null };
  }

  /** Readiness checks for /readyz. */
  readiness(): Record<string, boolean> {
    const { term } = this;
    return {
      redis: term.store.connected('reader') && term.store.connected('main'),
      group: this.groupPresent,
      workers: term.live && term.lanes.length === term.config.shards,
    };
  }

  inFlight(shard: number): number {
    const l = this.term.lanes[shard];
    return l ? l.inFlight + l.batch.size : 0;
  }

  utilization(shard: number): number {
    return this.term.lanes[shard]?.utilization() ?? 0;
  }

  /**
   * The shard worker's busy time since this term started, in ms: a counter, so that any number of readers
   * (the status page's viewers) get utilisation from two readings without resetting `utilization`'s window.
   */
  busyMs(shard: number): number {
    return this.term.lanes[shard]?.busyTotalMs ?? 0;
  }

  /** Shard `shard`'s stream time, open windows and dedup IDs as of its last committed output. */
  shardState(shard: number): { streamTime: number | null; openWindows: number; dedupIds: number } | null {
    const l = this.term.lanes[shard];
    return l === undefined
      ? null
      : { streamTime: l.streamTime, openWindows: l.openWindows, dedupIds: l.dedupIds };
  }

  /** The shard worker's V8 heap (used, size) in bytes as of its last answer; zeros before any. */
  workerHeap(shard: number): [number, number] {
    const lane = this.term.lanes[shard];
    return lane === undefined ? [0, 0] : [lane.heapUsed, lane.heapSize];
  }

  groupInfo(): ReturnType<Store['groupInfo']> {
    return this.term.store.groupInfo();
  }
}

function windowIdleClose(c: PipelineConfig): number {
  for (const s of c.stages) if ('window' in s) return s.window.idleClose;
  return 0;
}

/**
 * A lane is the main thread's handle on one shard: its worker (a single-thread piscina pool, so the
 * worker — and its state — is pinned; the lane submits one task at a time, see `lastTask`), its open
 * batch, its in-flight count, and the promise chain that keeps its commits in batch order.
 *
 *   read → route → OpenBatch ──flush──► worker task (runs while earlier commits are still in flight)
 *                                              │
 *   chain:  … ─► commit(batch n-1) ─► await task n ─► commit(batch n) ─► …
 *
 * The lane owns its state: the engine tells it what happened (`dispatch`, `outputTaken`,
 * `outputCommitted`, `crashed`, `resubmit`, `starvedUntil`, `tick`, `nextCommitSeq`) and reads the rest
 * through getters. What each event changes:
 *
 *   dispatch(n, now)      inFlight += n, quietSince = now, the batch is retained
 *   outputTaken()         the oldest retained batch is dropped (its output is in hand, its commit follows)
 *   outputCommitted(n, o) inFlight −= n; openWindows, dedupIds, streamTime, busyMs, heap figures from
 *                         the worker's answer
 *   crashed()             epoch + 1, generation + 1, recovering; the oldest retained batch counts a crash
 *   resubmit(attempts)    every retained batch goes to the new worker in order; recovering ends
 *   tick(quietUntil)      tickQueued until the tick's output has settled
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { PipelineConfig } from '../config/load.js';
import { splitBatch } from '../routing/batchCodec.js';
import { OpenBatch } from '../routing/router.js';
import type { InitResult, RestoredState, ShardOutput, ShardTask } from '../shard/protocol.js';

const WORKER_YOUNG_MB = 4;
const WORKER = fileURLToPath(new URL('../shard/worker.js', import.meta.url));

/** A dispatched batch not yet committed: a copy, to resubmit if the worker crashes. */
export interface RetainedBatch {
  buf: ArrayBuffer;
  count: number;
  /** Wall ms of its first dispatch: a resubmission checks event times against the same clock. */
  now: number;
  /** Times the worker crashed while this batch was the oldest uncommitted one. */
  crashes: number;
}

export class Lane {
  readonly batch = new OpenBatch();
  /** Events read for this shard and not yet committed (open batch excluded). */
  private inFlightCount = 0;
  /** Open window buckets after the last committed batch; a quiet lane with some is ticked. */
  private openWindowCount = 0;
  /** The worker's dedup IDs and stream time as of its last committed answer (or the restore). */
  private dedupIdCount = 0;
  private streamTimeMs: number | null = null;
  private tickQueued = false;
  /** Sequence number of the lane's next commit in this leadership term (its idempotence ID). */
  private commitSeq = 0;
  /**
   * Incremented when the worker crashed: outputs of tasks submitted before are discarded, since every
   * uncommitted batch is resubmitted to the restarted worker (see `retained`).
   */
  private epochCount = 0;
  /** Worker generation: 0 for the first worker, +1 per restart. */
  private generationCount = 0;
  /** True from a crash until the retained batches are resubmitted; the lane takes no new batch meanwhile. */
  private recoveringNow = false;
  /** Copies of the dispatched, uncommitted batches, oldest first. */
  private retained: RetainedBatch[] = [];
  /**
   * Wall ms since which this shard has been quiet: its last batch, or the last moment the reader could
   * not read (backpressure, Redis down) — a shard starved by the pipeline itself is not quiet.
   */
  private quietSinceMs = Date.now();
  /** The worker's V8 heap as of its last answer (bytes). */
  private heapUsedBytes = 0;
  private heapSizeBytes = 0;
  /** Worker milliseconds spent on this lane's tasks since start (as the worker measured them). */
  private busyMs = 0;
  private chain: Promise<void> = Promise.resolve();
  /**
   * The last task submitted. piscina does not guarantee FIFO even with one thread (a task it cannot place
   * at once goes back to the tail of its queue — measured: batches ran out of order), so each task is
   * submitted only once the previous one finished. Costs one message hop per batch, not per event.
   */
  private lastTask: Promise<unknown> = Promise.resolve();
  private readonly pool: Piscina<ShardTask, ShardOutput | InitResult>;

  /** @param worker the worker module (the shard worker; a stand-in in the lane's unit tests) */
  constructor(
    readonly shard: number,
    heapMb: number,
    worker: string = WORKER,
  ) {
    this.pool = new Piscina({
      filename: worker,
      minThreads: 1,
      maxThreads: 1,
      // The worker holds the shard's state: it must never be reaped for idleness.
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      // A small young generation: a shard's garbage is per batch and short-lived, and V8's default (up to
      // 3 × 16 MB per isolate) only added RSS — measured with 1M open windows, 2 shards: peak RSS 463 → 375
      // MB, drain rate unchanged within noise (BENCHMARKS.md).
      resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: WORKER_YOUNG_MB },
      name: 'default',
    });
  }

  /** (Re)initialises the worker with restored state; after a crash, piscina has started a fresh thread. */
  async init(config: PipelineConfig, restored: RestoredState): Promise<InitResult> {
    const { shard, generationCount: generation } = this;
    const task = { kind: 'init', config, shard, restored, now: Date.now(), generation } as const;
    const r = (await this.submit(() => this.pool.run(task))) as unknown as InitResult;
    this.openWindowCount = r.openWindows;
    this.dedupIdCount = r.dedupIds;
    this.streamTimeMs = r.streamTime;
    return r;
  }

  /** Sends the open batch to the worker; returns its size and the pending output. */
  dispatch(now: number): { count: number; output: Promise<ShardOutput> } {
    const { count, buf } = this.batch.take();
    this.inFlightCount += count;
    this.quietSinceMs = now;
    return { count, output: this.submitBatch({ buf, count, now, crashes: 0 }) };
  }

  /** Submits a batch: the worker gets a transferred copy; the lane keeps the original until its commit. */
  private submitBatch(b: RetainedBatch): Promise<ShardOutput> {
    this.retained.push(b);
    const buf = b.buf.slice(0);
    const task = { kind: 'batch', buf, now: b.now } as const;
    return this.submit(() => this.pool.run(task, { transferList: [buf] }));
  }

  /**
   * The output of the oldest retained batch is in hand and current (its commit follows): the copy kept
   * for a resubmission is dropped.
   */
  outputTaken(): void {
    this.retained.shift();
  }

  /**
   * The output of a task (a batch of `count` events, or a tick with 0) was committed: the events leave
   * the in-flight count, and the worker's figures as of that answer are kept.
   */
  outputCommitted(count: number, out: ShardOutput): void {
    this.openWindowCount = out.openWindows;
    this.dedupIdCount = out.dedupIds;
    this.streamTimeMs = out.streamTime;
    this.inFlightCount -= count;
    this.busyMs += out.busyMs;
    this.heapUsedBytes = out.heapUsed;
    this.heapSizeBytes = out.heapSize;
  }

  /** The sequence number of the lane's next commit in this leadership term (its idempotence ID). */
  nextCommitSeq(): number {
    return this.commitSeq++;
  }

  /**
   * The worker crashed (or a task threw): outputs of tasks submitted before are discarded from now on,
   * the next worker is one generation on, and the lane takes no new batch until {@link resubmit}. The
   * crash is counted against the oldest retained batch; returns its crash count (0 when none is retained).
   */
  crashed(): number {
    this.epochCount++;
    this.generationCount++;
    this.recoveringNow = true;
    const head = this.retained[0];
    if (head !== undefined) head.crashes++;
    return head?.crashes ?? 0;
  }

  /** The reader could not read until `now` (backpressure, Redis down): the shard was not quiet meanwhile. */
  starvedUntil(now: number): void {
    if (this.quietSinceMs < now) this.quietSinceMs = now;
  }

  /**
   * After a crash and re-init: resubmits every uncommitted batch, in order. When the oldest one has now
   * crashed the worker `attempts` times, it is split into single-entry batches to find the entry that
   * does; a single entry that crashed it `attempts` times is resubmitted marked as poison (the worker
   * dead-letters it without processing). Ends the recovery: returns the batches with their pending
   * outputs, to commit in order.
   */
  resubmit(attempts: number): Array<{ count: number; output: Promise<ShardOutput> }> {
    const old = this.retained;
    this.retained = [];
    this.recoveringNow = false;
    const head = old[0];
    if (head !== undefined && head.crashes >= attempts) {
      const singles = splitBatch(head.buf, head.count === 1 ? new Set([0]) : new Set());
      old.splice(0, 1, ...singles.map((buf) => ({ buf, count: 1, now: head.now, crashes: 0 })));
    }
    return old.map((b) => ({ count: b.count, output: this.submitBatch(b) }));
  }

  /**
   * Lets the worker advance idle stream time; the lane counts as busy (not {@link idle}) until the
   * tick's output has settled.
   * @param quietUntil the start of the latest read that found the stream caught up (see Shard.tick)
   */
  tick(quietUntil: number): Promise<ShardOutput> {
    this.tickQueued = true;
    const quietSince = this.quietSinceMs;
    const output = this.submit(() => this.pool.run({ kind: 'tick', quietUntil, quietSince }));
    output.then(
      () => (this.tickQueued = false),
      () => (this.tickQueued = false),
    );
    return output;
  }

  private submit(run: () => Promise<ShardOutput | InitResult>): Promise<ShardOutput> {
    const task = this.lastTask.then(run, run) as Promise<ShardOutput>;
    this.lastTask = task.catch(() => {});
    return task;
  }

  /** Runs `step` after every step queued before it. Errors go to `onError`; the chain itself never rejects. */
  enqueue(step: () => Promise<void>, onError: (e: unknown) => void): void {
    this.chain = this.chain.then(step).catch(onError);
  }

  /** Resolves when every queued step has finished. */
  drained(): Promise<void> {
    return this.chain;
  }

  get idle(): boolean {
    return this.inFlightCount === 0 && this.batch.size === 0 && !this.tickQueued;
  }

  /** Events read for this shard and not yet committed (open batch excluded). */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Open window buckets after the last committed output (or the restore); a quiet lane with some is ticked. */
  get openWindows(): number {
    return this.openWindowCount;
  }

  /** Event IDs the shard's dedup stage remembers, as of the last committed output (or the restore). */
  get dedupIds(): number {
    return this.dedupIdCount;
  }

  /** The shard's stream time (epoch ms) as of the last committed output (or the restore); null before any. */
  get streamTime(): number | null {
    return this.streamTimeMs;
  }

  /** Rises at each crash; an output of a task submitted in an earlier epoch is discarded. */
  get epoch(): number {
    return this.epochCount;
  }

  /** Worker generation: 0 for the first worker, +1 per restart. */
  get generation(): number {
    return this.generationCount;
  }

  /** From a crash until the retained batches are resubmitted; the lane takes no new batch meanwhile. */
  get recovering(): boolean {
    return this.recoveringNow;
  }

  /** Wall ms since which this shard has been quiet (see `quietSinceMs`). */
  get quietSince(): number {
    return this.quietSinceMs;
  }

  /** The worker's V8 heap as of its last answer (bytes). */
  get heapUsed(): number {
    return this.heapUsedBytes;
  }

  get heapSize(): number {
    return this.heapSizeBytes;
  }

  private sampledAt = performance.now();
  private sampledBusy = 0;

  /**
   * Share of wall time the worker was busy since the previous call (0..1). piscina's own `utilization`
   * was measured to stay near 0 under full load, so the lane counts the worker's reported busy time.
   */
  utilization(): number {
    const now = performance.now();
    const u = (this.busyMs - this.sampledBusy) / Math.max(1, now - this.sampledAt);
    this.sampledAt = now;
    this.sampledBusy = this.busyMs;
    return Math.min(1, u);
  }

  /** The worker's busy time since the lane started, in ms (utilisation over any interval, read-only). */
  get busyTotalMs(): number {
    return this.busyMs;
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

/**
 * A lane is the main thread's handle on one shard: its worker (a single-thread piscina pool, so the
 * worker — and its state — is pinned; the lane submits one task at a time, see `lastTask`), its open
 * batch, its in-flight count, and the promise chain that keeps its commits in batch order.
 *
 *   read → route → OpenBatch ──flush──► worker task (runs while earlier commits are still in flight)
 *                                              │
 *   chain:  … ─► commit(batch n-1) ─► await task n ─► commit(batch n) ─► …
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
  inFlight = 0;
  /** Open window buckets after the last committed batch; a quiet lane with some is ticked. */
  openWindows = 0;
  tickQueued = false;
  /** Sequence number of the lane's next commit in this leadership term (its idempotence ID). */
  nextCommitSeq = 0;
  /**
   * Incremented when the worker crashed: outputs of tasks submitted before are discarded, since every
   * uncommitted batch is resubmitted to the restarted worker (see `retained`).
   */
  epoch = 0;
  /** Worker generation: 0 for the first worker, +1 per restart. */
  generation = 0;
  /** True from a crash until the retained batches are resubmitted; the lane takes no new batch meanwhile. */
  recovering = false;
  /** Copies of the dispatched, uncommitted batches, oldest first. */
  retained: RetainedBatch[] = [];
  /**
   * Wall ms since which this shard has been quiet: its last batch, or the last moment the reader could
   * not read (backpressure, Redis down) — a shard starved by the pipeline itself is not quiet.
   */
  quietSince = Date.now();
  private chain: Promise<void> = Promise.resolve();
  /**
   * The last task submitted. piscina does not guarantee FIFO even with one thread (a task it cannot place
   * at once goes back to the tail of its queue — measured: batches ran out of order), so each task is
   * submitted only once the previous one finished. Costs one message hop per batch, not per event.
   */
  private lastTask: Promise<unknown> = Promise.resolve();
  private readonly pool: Piscina<ShardTask, ShardOutput | InitResult>;

  constructor(
    readonly shard: number,
    heapMb: number,
  ) {
    this.pool = new Piscina({
      filename: WORKER,
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
    const { shard, generation } = this;
    const task = { kind: 'init', config, shard, restored, now: Date.now(), generation } as const;
    const r = (await this.submit(() => this.pool.run(task))) as unknown as InitResult;
    this.openWindows = r.openWindows;
    return r;
  }

  /** Sends the open batch to the worker; returns its size and the pending output. */
  dispatch(now: number): { count: number; output: Promise<ShardOutput> } {
    const { count, buf } = this.batch.take();
    this.inFlight += count;
    this.quietSince = now;
    return { count, output: this.submitBatch({ buf, count, now, crashes: 0 }) };
  }

  /** Submits a batch: the worker gets a transferred copy; the lane keeps the original until its commit. */
  private submitBatch(b: RetainedBatch): Promise<ShardOutput> {
    this.retained.push(b);
    const buf = b.buf.slice(0);
    const task = { kind: 'batch', buf, now: b.now } as const;
    return this.submit(() => this.pool.run(task, { transferList: [buf] }));
  }

  /** The oldest retained batch was committed. */
  committed(): void {
    this.retained.shift();
  }

  /**
   * After a crash and re-init: resubmits every uncommitted batch, in order. When the oldest one has now
   * crashed the worker `attempts` times, it is split into single-entry batches to find the entry that
   * does; a single entry that crashed it `attempts` times is resubmitted marked as poison (the worker
   * dead-letters it without processing). Returns the batches with their pending outputs, to commit in order.
   */
  resubmit(attempts: number): Array<{ count: number; output: Promise<ShardOutput> }> {
    const old = this.retained;
    this.retained = [];
    const head = old[0];
    if (head !== undefined && head.crashes >= attempts) {
      const singles = splitBatch(head.buf, head.count === 1 ? new Set([0]) : new Set());
      old.splice(0, 1, ...singles.map((buf) => ({ buf, count: 1, now: head.now, crashes: 0 })));
    }
    return old.map((b) => ({ count: b.count, output: this.submitBatch(b) }));
  }

  /** @param quietUntil the start of the latest read that found the stream caught up (see Shard.tick) */
  tick(quietUntil: number): Promise<ShardOutput> {
    const quietSince = this.quietSince;
    return this.submit(() => this.pool.run({ kind: 'tick', quietUntil, quietSince }));
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
    return this.inFlight === 0 && this.batch.size === 0 && !this.tickQueued;
  }

  /** The worker's V8 heap as of its last answer (bytes). */
  heapUsed = 0;
  heapSize = 0;

  /** Worker milliseconds spent on this lane's tasks since start (as the worker measured them). */
  busyMs = 0;
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

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

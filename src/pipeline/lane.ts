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
import { OpenBatch } from '../routing/router.js';
import type { InitResult, RestoredState, ShardOutput, ShardTask } from '../shard/protocol.js';

const WORKER = fileURLToPath(new URL('../shard/worker.js', import.meta.url));

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
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
      name: 'default',
    });
  }

  async init(config: PipelineConfig, restored: RestoredState): Promise<void> {
    const r = (await this.pool.run({ kind: 'init', config, shard: this.shard, restored })) as InitResult;
    this.openWindows = r.openWindows;
  }

  /** Sends the open batch to the worker; returns its size and the pending output. */
  dispatch(now: number): { count: number; output: Promise<ShardOutput> } {
    const { count, buf } = this.batch.take();
    this.inFlight += count;
    this.quietSince = now;
    const output = this.submit(() => this.pool.run({ kind: 'batch', buf }, { transferList: [buf] }));
    return { count, output };
  }

  tick(now: number): Promise<ShardOutput> {
    const quietSince = this.quietSince;
    return this.submit(() => this.pool.run({ kind: 'tick', now, quietSince }));
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

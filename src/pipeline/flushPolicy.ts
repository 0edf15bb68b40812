/**
 * When a lane's open batch goes to its worker (group commit), and when a quiet lane is ticked.
 *
 *   full batch (commit.maxEvents)                       → at once
 *   partial batch, lane has nothing in flight:
 *     the last read found the stream caught up          → at once
 *     otherwise                                         → when its oldest entry waited commit.maxDelay
 *   partial batch, lane busy                            → when the lane's commit is done (`afterCommit`)
 *   lane recovering from a worker crash                 → never: its retained batches go first
 *
 * Under load commits grow instead of queueing behind each other: at 20k events/s, small batches cut every
 * `maxDelay` queued up and made the latency worse than at a higher rate.
 *
 * Idle ticks: a lane with open windows whose shard has been quiet for `window.idleClose` (counted up to
 * the start of the latest read that found the stream caught up, `caughtUpAt`) is ticked so that its
 * worker advances stream time and emits due windows. A shard starved by the pipeline itself (backpressure,
 * Redis down) is not quiet.
 */
import type { ShardOutput } from '../shard/protocol.js';
import type { Lane } from './lane.js';
import type { Term } from './term.js';

/** Sends a lane's dispatched batch (`count` events) or tick (0) output to be committed in order. */
export type SendOutput = (lane: Lane, count: number, output: Promise<ShardOutput>, isBatch: boolean) => void;

export class FlushPolicy {
  private flushTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  /**
   * Wall ms when the latest read that found the stream caught up (fewer than `source.batchSize` new
   * entries) was sent. Quiet time is counted up to here, not up to now: a read still in flight (a huge
   * reply, a slow Redis) may bring events for a shard, so it is no evidence that the shard is quiet — idle
   * close then lags by at most one read (`source.block`).
   */
  private caughtUpAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly term: Term,
    /** Milliseconds of quiet before a lane with open windows is ticked; 0 = never. */
    private readonly idleClose: number,
    private readonly send: SendOutput,
    /** True while the reader waits for room (its lanes are starved, not quiet). */
    private readonly readerStalled: () => boolean,
  ) {}

  /** Starts the idle-tick timer (when windows may close on idleness). */
  start(): void {
    if (this.idleClose <= 0) return;
    const every = Math.max(20, Math.min(1000, this.idleClose / 4));
    this.tickTimer = setInterval(() => this.tickQuietLanes(), every);
  }

  /** Stops both timers; `flushAll` sends what is left. */
  stop(): void {
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.tickTimer = null;
    this.flushTimer = null;
  }

  /**
   * After a read of `n` entries, sent at `readStart`, was routed: flushes what is due. A read of fewer than
   * `batchSize` new entries got everything there was: more reads would not fill the batches soon, so an
   * idle lane sends what it has at once rather than after `commit.maxDelay`.
   */
  afterRead(n: number, readStart: number, replay: boolean): void {
    const c = this.term.config;
    const caughtUp = n < c.source.batchSize;
    if (!replay && caughtUp) this.caughtUpAt = readStart;
    for (const lane of this.term.lanes) {
      if (lane.batch.size >= c.commit.maxEvents || (caughtUp && this.partialDue(lane))) this.flush(lane);
    }
    this.scheduleFlush();
  }

  /** A lane's commit is done: what gathered meanwhile has waited a whole commit already and goes now. */
  afterCommit(lane: Lane, out: ShardOutput): void {
    const term = this.term;
    if (this.partialDue(lane) && term.running) this.flush(lane);
    // A window close spread over commits goes on with the next batch, or with a tick if none is coming.
    if (out.closePending && lane.idle && term.live) this.tick(lane);
  }

  /** Sends the lane's open batch to its worker, unless empty, failed, or the lane is recovering. */
  flush(lane: Lane): void {
    if (lane.batch.size === 0 || this.term.failure !== null || lane.recovering) return;
    const { count, output } = lane.dispatch(Date.now());
    this.send(lane, count, output, true);
  }

  /** Sends every lane's open batch (stop). */
  flushAll(): void {
    for (const lane of this.term.lanes) this.flush(lane);
  }

  /** After the reader could not read, no shard counts as quiet for the time it was starved. */
  notQuietUntilNow(): void {
    const now = Date.now();
    for (const lane of this.term.lanes) lane.starvedUntil(now);
  }

  private partialDue(lane: Lane): boolean {
    return lane.batch.size > 0 && lane.inFlight === 0;
  }

  /** One timer for all idle lanes: fires when the oldest of their open batches reaches `commit.maxDelay`. */
  private scheduleFlush(): void {
    if (this.flushTimer !== null) return;
    const maxDelay = this.term.config.commit.maxDelay;
    let oldest = Number.POSITIVE_INFINITY;
    for (const l of this.term.lanes) if (this.partialDue(l) && l.batch.since < oldest) oldest = l.batch.since;
    if (oldest === Number.POSITIVE_INFINITY) return;
    this.flushTimer = setTimeout(
      () => {
        this.flushTimer = null;
        const now = Date.now();
        for (const l of this.term.lanes)
          if (this.partialDue(l) && now - l.batch.since >= maxDelay) this.flush(l);
        this.scheduleFlush();
      },
      Math.max(0, oldest + maxDelay - Date.now()),
    );
  }

  private tickQuietLanes(): void {
    const { term } = this;
    if (!term.live || this.readerStalled()) return;
    if (!term.store.connected('reader') || !term.store.connected('main')) {
      this.notQuietUntilNow(); // Redis unreachable: reads wait in the client's queue; shards are starved
      return;
    }
    for (const lane of term.lanes) {
      if (!lane.idle || lane.openWindows === 0 || this.caughtUpAt - lane.quietSince < this.idleClose)
        continue;
      this.tick(lane);
    }
  }

  /** Lets the lane's shard advance idle stream time and emit due windows, then commits that. */
  private tick(lane: Lane): void {
    this.send(lane, 0, lane.tick(this.caughtUpAt), false);
  }
}

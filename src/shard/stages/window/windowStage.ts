/**
 * Event-time windows per key, aligned to the epoch: `[start, start + size)`, a new one every `advance`
 * (= size for tumbling). A window closes when the shard's stream time reaches `end + grace`; an event all of
 * whose windows have closed is late.
 *
 * This file assigns an event to its windows and adds it to each; the rest of the stage is in its own files:
 *
 *   aggregates.ts   what a row holds (count and aggregate slots) and how an event changes it
 *   buckets.ts      the state: buckets sorted by window start, columnar rows (keyIndex.ts: key → row)
 *   closing.ts      closing due windows from the head of the list, emitting their results in slices
 *   checkpoint.ts   the checkpoint delta of a drain, and restoring buckets from the checkpoint
 */
import type { WindowConfig } from '../../../config/schema.js';
import type { ByteString } from '../../../util/bytes.js';
import { RowLayout } from './aggregates.js';
import { type Bucket, Buckets, FRESH, HELD } from './buckets.js';
import { drainChanges, restoreBucket, type WindowDrain } from './checkpoint.js';
import { WindowCloser } from './closing.js';

/** What {@link WindowStage.addBytes} did with an event. */
export const ADDED = 0;
/** Every window of the event's time has closed: nothing changed. */
export const LATE = 1;
/** A sum (of a `sum` or `avg` aggregate) would stop being finite: nothing changed. */
export const OVERFLOW = 2;
export type AddResult = typeof ADDED | typeof LATE | typeof OVERFLOW;

/**
 * What the shard asks of a window stage, whatever its type (operator.ts picks the implementation once):
 * this file's epoch-aligned windows, sessionStage.ts or slidingStage.ts.
 */
export interface WindowOperator {
  /** Open windows (buckets, sessions, or pending sliding windows): the open-windows gauge. */
  readonly openBuckets: number;
  /**
   * Adds an event with the key `bytes[start, end)` (`hash` = its FNV-1a, `keyGroup` its key group) at event
   * time `ts`; `values` are the aggregated fields in aggregate order. Changes nothing on LATE or OVERFLOW.
   */
  addBytes(
    bytes: Uint8Array,
    start: number,
    end: number,
    hash: number,
    keyGroup: number,
    ts: number,
    values: Float64Array,
    streamTime: number,
  ): AddResult;
  /** Why the last `addBytes` returned OVERFLOW. */
  overflowMessage(): string;
  /** Whether a window is due at `streamTime` (`closeDue` has more to emit). */
  closePending(streamTime: number): boolean;
  /** Emits (into `out`) and forgets windows due at `streamTime`, at most `maxResults`; returns how many. */
  closeDue(streamTime: number, out: ByteString[][], maxResults?: number): number;
  /** Checkpoint changes since the last call. */
  drain(): WindowDrain;
  /** Restores one checkpointed hash of one key group: `[key, text, …]`. */
  restore(keyGroup: number, start: number, fields: readonly ByteString[]): void;
}

export class WindowStage implements WindowOperator {
  private readonly size: number;
  private readonly advance: number;
  private readonly grace: number;
  private readonly layout: RowLayout;
  private readonly stride: number;
  private readonly buckets: Buckets;
  private readonly closer: WindowCloser;
  /** An event can fall in several windows and a sum can overflow: check all before changing any. */
  private readonly checkFirst: boolean;
  /**
   * Scratch of `addChecked`, one slot per window an event can fall in: the window starts, their buckets
   * (null: not created yet) and the key's row (-1: not in the bucket yet), found before anything changes.
   */
  private readonly hitStarts: Float64Array;
  private readonly hitBuckets: Array<Bucket | null>;
  private readonly hitRows: Int32Array;
  /** After OVERFLOW: the aggregate whose sum overflowed and the window start (for the dead letter). */
  private overflowAggregate = 0;
  private overflowStart = 0;

  constructor(cfg: WindowConfig) {
    this.size = cfg.size ?? 0; // required for tumbling and hopping (stageSchema.ts)
    this.advance = cfg.type === 'hopping' && cfg.advance !== undefined ? cfg.advance : this.size;
    this.grace = cfg.grace;
    this.layout = new RowLayout(cfg.aggregates);
    this.stride = this.layout.stride;
    this.buckets = new Buckets(this.stride);
    this.closer = new WindowCloser(this.buckets, this.layout, this.size, this.grace);
    this.checkFirst = this.layout.sums && this.advance < this.size;
    const perEvent = Math.ceil(this.size / this.advance) + 1;
    this.hitStarts = new Float64Array(perEvent);
    this.hitBuckets = new Array<Bucket | null>(perEvent).fill(null);
    this.hitRows = new Int32Array(perEvent);
  }

  get openBuckets(): number {
    return this.buckets.count;
  }

  /**
   * Adds an event with the key `bytes[start, end)` (`hash` = its FNV-1a) to every window of `ts` that is
   * still open. `values` are the aggregated fields in aggregate order. Changes nothing and returns LATE when
   * all of them have closed, or OVERFLOW when a sum in one of them would stop being finite (then
   * {@link overflowMessage} says which): every window is checked before any changes, so a hopping window's
   * event is counted in all of its windows or in none.
   */
  addBytes(
    bytes: Uint8Array,
    start: number,
    end: number,
    hash: number,
    keyGroup: number,
    ts: number,
    values: Float64Array,
    streamTime: number,
  ): AddResult {
    if (this.checkFirst) return this.addChecked(bytes, start, end, hash, keyGroup, ts, values, streamTime);
    // One pass: with one window per event (tumbling) its check comes before its only change; without a
    // sum nothing can overflow. This is the pass the hot path had before the overflow check (measured:
    // the two-pass form cost ~20 ns per event on a tumbling window).
    const last = Math.floor(ts / this.advance) * this.advance; // latest window start containing ts
    let added = false;
    for (let w = last; w > ts - this.size; w -= this.advance) {
      if (w + this.size + this.grace <= streamTime) break; // this and every earlier start are closed
      const b = this.buckets.get(w);
      let row = b.index.find(bytes, start, end, hash);
      if (row < 0) {
        row = b.newRow(b.index.insert(bytes, start, end, hash), keyGroup, this.layout.empty);
        b.hold(keyGroup, HELD | FRESH);
      } else if (this.layout.sums && this.overflows(b, row, values)) return OVERFLOW; // a new row starts at 0
      this.addTo(b, row, values);
      added = true;
    }
    return added ? ADDED : LATE;
  }

  /**
   * `addBytes` for hopping windows with a sum: first finds the key in each open window (no change yet;
   * a new row starts at 0 and `values` are finite, so only a held sum can overflow), then adds. The
   * scratch arrays keep this allocation-free.
   */
  private addChecked(
    bytes: Uint8Array,
    start: number,
    end: number,
    hash: number,
    keyGroup: number,
    ts: number,
    values: Float64Array,
    streamTime: number,
  ): AddResult {
    const last = Math.floor(ts / this.advance) * this.advance;
    let n = 0;
    for (let w = last; w > ts - this.size; w -= this.advance) {
      if (w + this.size + this.grace <= streamTime) break;
      const b = this.buckets.find(w);
      const row = b === null ? -1 : b.index.find(bytes, start, end, hash);
      if (row >= 0 && this.overflows(b as Bucket, row, values)) {
        this.hitBuckets.fill(null, 0, n);
        return OVERFLOW;
      }
      this.hitStarts[n] = w;
      this.hitBuckets[n] = b;
      this.hitRows[n] = row;
      n++;
    }
    if (n === 0) return LATE;
    for (let i = 0; i < n; i++) {
      const b = this.hitBuckets[i] ?? this.buckets.get(this.hitStarts[i] as number);
      this.hitBuckets[i] = null; // hold no bucket past its close
      let row = this.hitRows[i] as number;
      if (row < 0) {
        row = b.newRow(b.index.insert(bytes, start, end, hash), keyGroup, this.layout.empty);
        b.hold(keyGroup, HELD | FRESH);
      }
      this.addTo(b, row, values);
    }
    return ADDED;
  }

  private addTo(b: Bucket, row: number, values: Float64Array): void {
    this.layout.add(b.data, row * this.stride, values);
    b.markDirty(row);
  }

  /** Whether adding `values` to `row` would make one of its sums infinite; records which for the message. */
  private overflows(b: Bucket, row: number, values: Float64Array): boolean {
    const aggregate = this.layout.overflowingSum(b.data, row * this.stride, values);
    if (aggregate < 0) return false;
    this.overflowAggregate = aggregate;
    this.overflowStart = b.start;
    return true;
  }

  /** Why the last `addBytes` returned OVERFLOW. */
  overflowMessage(): string {
    const name = this.layout.names[this.overflowAggregate] as string;
    const start = this.overflowStart;
    return (
      `${name} of the key's window [${start}, ${start + this.size}) would exceed ` +
      `${Number.MAX_VALUE} in magnitude; the event changed no window (a value this large is usually a ` +
      'producer bug; if such sums are real, aggregate the field in a larger unit)'
    );
  }

  /** Whether a window is due at `streamTime` (`closeDue` has more to emit). */
  closePending(streamTime: number): boolean {
    return this.closer.pending(streamTime);
  }

  /**
   * Emits (into `out`) and forgets the windows due at `streamTime`, at most `maxResults` results per call;
   * returns how many (closing.ts).
   */
  closeDue(streamTime: number, out: ByteString[][], maxResults = Number.POSITIVE_INFINITY): number {
    return this.closer.closeDue(streamTime, out, maxResults);
  }

  /** Checkpoint changes since the last call (checkpoint.ts). */
  drain(): WindowDrain {
    return drainChanges(this.buckets, this.layout);
  }

  /** Restores one checkpointed bucket of one key group: `[key, encodedAggregate, …]` (checkpoint.ts). */
  restore(keyGroup: number, start: number, fields: readonly ByteString[]): void {
    restoreBucket(this.buckets, this.layout, keyGroup, start, fields);
  }
}

/**
 * Sliding windows per key, with the semantics of Kafka Streams' `SlidingWindows`: a window is a fixed
 * `size` span `[start, start + size]`, inclusive at both ends, and the windows emitted for a key are the
 * distinct ones whose content changes at an event: for each event at `t`, the window that ends with it,
 * `[t - size, t]`, and the one that starts just after it, `[t + 1, t + 1 + size]` (emitted only if an event
 * falls in it). Every window holds at least one event; together they are every distinct set of a key's
 * events that a window of `size` can cover (times are in ms; the "+ 1" is 1 ms).
 *
 * A window closes when the shard's stream time passes its end + grace. An event at `t` is late when its
 * own window `[t - size, t]` has closed (stream time > t + grace). While it has not, no window containing
 * the event has closed either (each ends at or after `t`), so an accepted event never changes an emitted
 * window. (Kafka Streams still adds an event whose own window closed to the later windows that are open;
 * we dead-letter it: docs/configuration.md, "Sliding windows".)
 *
 *   keys (keyedState.ts)   "a" → times  [ 10.0 10.2 10.7 ]   the key's accepted events, sorted by time
 *                                 values [ …per event, one per aggregate… ]
 *                                 starts [ 0.2 0.7 10.1 … ]   pending window starts, sorted, distinct
 *   heap (dueHeap.ts)      one live item per key, due at the end of its first pending window
 *
 * A window's aggregates are computed when it closes, from the events it covers (so min and max need no
 * per-window state): O(events in the window) per result. Events are kept while a pending window or a
 * future event's window can cover them: from min(first pending start, stream time - grace - size) on.
 */
import type { WindowConfig } from '../../../config/schema.js';
import type { ByteString } from '../../../util/bytes.js';
import { RowLayout } from './aggregates.js';
import type { WindowDrain } from './checkpoint.js';
import { type Due, DueHeap } from './dueHeap.js';
import { type KeyEntry, KeyedState } from './keyedState.js';
import { ADDED, type AddResult, LATE, OVERFLOW, type WindowOperator } from './windowStage.js';

interface SlidingKey {
  /** Accepted event times, ascending; equal times in arrival order. */
  readonly times: number[];
  /** Their aggregated values, `width` per event. */
  readonly values: number[];
  /** Starts of the windows still to emit, ascending, distinct. */
  readonly starts: number[];
  /** The key's live heap item, or null when it has no pending window. */
  item: HeapItem | null;
}

interface HeapItem extends Due {
  readonly entry: KeyEntry<SlidingKey>;
}

export class SlidingStage implements WindowOperator {
  private readonly size: number;
  private readonly grace: number;
  private readonly width: number;
  private readonly layout: RowLayout;
  private readonly keys: KeyedState<SlidingKey>;
  private readonly heap = new DueHeap<HeapItem>();
  private pending = 0;
  /** Scratch: one event's values, a row, the overflow check's sums of magnitudes. */
  private readonly scratch: Float64Array;
  private readonly row: Float64Array;
  private readonly magnitudes: Float64Array;
  private overflowAggregate = 0;

  constructor(cfg: WindowConfig) {
    this.size = cfg.size ?? 0; // required for sliding windows (stageSchema.ts)
    this.grace = cfg.grace;
    this.width = cfg.aggregates.length;
    this.layout = new RowLayout(cfg.aggregates);
    this.scratch = new Float64Array(this.width);
    this.row = new Float64Array(this.layout.stride);
    this.magnitudes = new Float64Array(this.layout.stride);
    const width = this.width;
    this.keys = new KeyedState<SlidingKey>({
      isEmpty: (k) => k.starts.length === 0 && k.times.length === 0,
      // `start,start,…|t,v…;t,v…`: the pending window starts, then each held event with its values
      encode: (k) => {
        const events: string[] = [];
        for (let i = 0; i < k.times.length; i++) {
          events.push([k.times[i], ...k.values.slice(i * width, (i + 1) * width)].join(','));
        }
        return `${k.starts.join(',')}|${events.join(';')}`;
      },
      decode: (text) => {
        const [startsText, eventsText] = text.split('|') as [string, string | undefined];
        if (eventsText === undefined) throw new Error(`"${text}" has no "|"`);
        const k: SlidingKey = { times: [], values: [], starts: [], item: null };
        if (startsText !== '') k.starts.push(...startsText.split(',').map(Number));
        for (const ev of eventsText === '' ? [] : eventsText.split(';')) {
          const parts = ev.split(',').map(Number);
          if (parts.length !== 1 + width) throw new Error(`event "${ev}" does not hold ${width} values`);
          k.times.push(parts[0] as number);
          k.values.push(...parts.slice(1));
        }
        if (![...k.starts, ...k.times, ...k.values].every(Number.isFinite)) {
          throw new Error(`"${text}" holds a number that is not finite`);
        }
        return k;
      },
    });
  }

  /** Windows still to emit (the open-windows gauge). */
  get openBuckets(): number {
    return this.pending;
  }

  addBytes(
    bytes: Uint8Array,
    start: number,
    end: number,
    _hash: number,
    keyGroup: number,
    ts: number,
    values: Float64Array,
    streamTime: number,
  ): AddResult {
    if (streamTime > ts + this.grace) return LATE; // its own window [ts - size, ts] has closed
    const e = this.keys.get(bytes, start, end, keyGroup, () => ({
      times: [],
      values: [],
      starts: [],
      item: null,
    }));
    const k = e.value;
    if (this.layout.sums && this.overflows(k, ts, values)) {
      if (k.times.length === 0 && k.starts.length === 0) this.keys.touch(e); // a new key: forgotten at drain
      return OVERFLOW;
    }
    let i = k.times.length;
    while (i > 0 && (k.times[i - 1] as number) > ts) i--;
    k.times.splice(i, 0, ts);
    k.values.splice(i * this.width, 0, ...values.subarray(0, this.width));
    this.addStart(k, ts - this.size);
    this.addStart(k, ts + 1);
    const first = k.starts[0] as number;
    if (k.item === null || first + this.size < k.item.due) {
      k.item = { due: first + this.size, entry: e };
      this.heap.push(k.item);
    }
    this.keys.touch(e);
    return ADDED;
  }

  /**
   * Whether a window containing `ts` could get a sum that is not finite: checked conservatively, as the
   * sum of the magnitudes of the key's events in `[ts - size, ts + 1 + size]` (which every window holding
   * `ts` lies in) plus the event's, added in time order.
   */
  private overflows(k: SlidingKey, ts: number, values: Float64Array): boolean {
    const m = this.magnitudes;
    m.set(this.layout.empty);
    const abs = this.scratch;
    for (let i = lowerBound(k.times, ts - this.size); i < k.times.length; i++) {
      if ((k.times[i] as number) > ts + 1 + this.size) break;
      for (let j = 0; j < this.width; j++) abs[j] = Math.abs(k.values[i * this.width + j] as number);
      if (this.noteOverflow(m, abs)) return true;
      this.layout.add(m, 0, abs);
    }
    for (let j = 0; j < this.width; j++) abs[j] = Math.abs(values[j] as number);
    return this.noteOverflow(m, abs);
  }

  private noteOverflow(m: Float64Array, abs: Float64Array): boolean {
    const o = this.layout.overflowingSum(m, 0, abs);
    if (o < 0) return false;
    this.overflowAggregate = o;
    return true;
  }

  private addStart(k: SlidingKey, s: number): void {
    const i = lowerBound(k.starts, s);
    if (k.starts[i] === s) return;
    k.starts.splice(i, 0, s);
    this.pending++;
  }

  overflowMessage(): string {
    const name = this.layout.names[this.overflowAggregate] as string;
    return (
      `${name} of a sliding window of the key could exceed ${Number.MAX_VALUE} in magnitude (the sum of ` +
      'the magnitudes of its events within size of this one would); the event changed no window (a value ' +
      'this large is usually a producer bug; if such sums are real, aggregate the field in a larger unit)'
    );
  }

  closePending(streamTime: number): boolean {
    const item = this.heap.peek();
    return item !== undefined && item.due + this.grace < streamTime;
  }

  /**
   * Emits (into `out`) the windows due at `streamTime`, at most `maxResults` results per call (at least one
   * if any is due), in order of their ends. On return the heap's head is a due window or none is.
   */
  closeDue(streamTime: number, out: ByteString[][], maxResults = Number.POSITIVE_INFINITY): number {
    const budget = maxResults >= 1 ? Math.floor(maxResults) : 1;
    let n = 0;
    for (let item = this.heap.peek(); item !== undefined; item = this.heap.peek()) {
      if (item.due + this.grace >= streamTime) break;
      const k = item.entry.value;
      if (item !== k.item) {
        this.heap.pop(); // superseded by an earlier due time
        continue;
      }
      const s = k.starts[0] as number;
      if (n === budget && this.emits(k, s)) break;
      this.heap.pop();
      if (this.emit(item.entry, s, out)) n++;
      k.starts.shift();
      this.pending--;
      const keepFrom = Math.min(k.starts[0] ?? Number.POSITIVE_INFINITY, streamTime - this.grace - this.size);
      const drop = lowerBound(k.times, keepFrom);
      if (drop > 0) {
        k.times.splice(0, drop);
        k.values.splice(0, drop * this.width);
      }
      k.item = k.starts.length === 0 ? null : { due: (k.starts[0] as number) + this.size, entry: item.entry };
      if (k.item !== null) this.heap.push(k.item);
      this.keys.touch(item.entry);
    }
    return n;
  }

  /** Whether the window `[s, s + size]` of `k` holds an event (a result). */
  private emits(k: SlidingKey, s: number): boolean {
    const i = lowerBound(k.times, s);
    return i < k.times.length && (k.times[i] as number) <= s + this.size;
  }

  /** Emits the window `[s, s + size]` of the key if it holds an event; returns whether it did. */
  private emit(e: KeyEntry<SlidingKey>, s: number, out: ByteString[][]): boolean {
    const k = e.value;
    const row = this.row;
    row.set(this.layout.empty);
    const end = s + this.size;
    for (let i = lowerBound(k.times, s); i < k.times.length && (k.times[i] as number) <= end; i++) {
      for (let j = 0; j < this.width; j++) this.scratch[j] = k.values[i * this.width + j] as number;
      this.layout.add(row, 0, this.scratch);
    }
    if (row[0] === 0) return false;
    out.push(this.layout.result(e.key, String(s), String(end), row, 0));
    return true;
  }

  drain(): WindowDrain {
    return this.keys.drain();
  }

  restore(keyGroup: number, start: number, fields: readonly ByteString[]): void {
    this.keys.restore(keyGroup, start, fields, (e) => {
      const k = e.value;
      this.pending += k.starts.length;
      if (k.starts.length === 0) return;
      k.item = { due: (k.starts[0] as number) + this.size, entry: e };
      this.heap.push(k.item);
    });
  }
}

/** The first index of sorted `a` whose value is >= `x` (a.length if none). */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

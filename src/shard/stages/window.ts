/**
 * Event-time windows per key, aligned to the epoch: `[start, start + size)`, a new one every `advance`
 * (= size for tumbling). A window closes when the shard's stream time reaches `end + grace`; an event all of
 * whose windows have closed is late.
 *
 * Layout: windows are epoch-aligned, so every key shares the same window starts. State is therefore a
 * sorted list of *buckets* (one per window start). Closing is a walk from the head of the list while
 * `start + size + grace <= streamTime` — no per-key timers or heaps. A bucket is columnar and holds no
 * object per key: a key index over the keys' bytes (keyIndex.ts) gives its row, and the row's state lives
 * in typed arrays shared by all rows. Measured with 1M short keys (`u0…`) in one bucket, count/sum/min/max
 * (`--expose-gc`, heap + array buffers): ~62 bytes per open (key, window), all of it in array buffers
 * (101 with a `Map` entry and a key string per row, ~300 with a Float64Array object per key); up to ~1.5×
 * that just past a power-of-two row count (96 at 600k), as the arrays double.
 *
 *   buckets (sorted by start)   [ 10:00 ]──[ 10:05 ]──[ 10:10 ]
 *                                  │
 *     index   key bytes → row      "a"→0   "b"→1   "c"→2         KeyIndex (and row → key)
 *     data    row → count, slots   3,9,1 │ 1,4,4 │ 2,5,2 │ …   Float64Array, stride 1 + slots
 *     group   row → key group      7     │ 0     │ 7     │ …   Uint16Array
 *     flags   row → DIRTY (listed in `dirty`) | SAVED (has a checkpoint field)   Uint8Array
 *     dirty   rows changed since the last drain   Int32Array list
 *             ▲ head: rows before it are emitted
 *
 * Rows are appended, so row order is first-insertion order: the order results are emitted in. A close may
 * emit a due bucket in slices (`maxResults` per call); it moves `head` forward, and the checkpoint
 * deletes the emitted fields (`removed`), or a key group's whole hash once all its rows are out (`closed`).
 * Arrays grow by doubling. Per bucket, key groups are tracked in arrays indexed by key group, grown to the
 * largest one seen (the config's `keyGroups` is typically 256).
 *
 * A row holds the count and one slot per configured aggregate but `count` (sum/avg hold the sum, min/max
 * the extreme). It is checkpointed as `count,slot1,slot2,…` with a slot per aggregate (0 for `count`),
 * decimal numbers readable with redis-cli.
 */
import type { Aggregate, WindowConfig } from '../../config/schema.js';
import { latin1 } from '../../routing/batchCodec.js';
import type { ByteString } from '../../util/bytes.js';
import { KeyIndex } from './keyIndex.js';

/** The key group has a checkpoint hash for this bucket (and an entry in its window index). */
const HELD = 1;
/** … that got its first row since the last drain: its window index entry is still to be written. */
const FRESH = 2;
/** Row flags: the row is listed in `dirty`; the row has been checkpointed (its field may need deleting). */
const DIRTY = 1;
const SAVED = 2;
const FIRST_ROWS = 16;

class Bucket {
  /** Key bytes → row, and row → key (keyIndex.ts). */
  readonly index = new KeyIndex();
  rows = 0;
  data: Float64Array;
  group = new Uint16Array(FIRST_ROWS);
  flags = new Uint8Array(FIRST_ROWS);
  dirty = new Int32Array(FIRST_ROWS);
  dirtyCount = 0;
  /** Rows before it have been emitted. */
  head = 0;
  /** `head` at the last drain: rows from here to `head` are to be removed from the checkpoint. */
  drainedHead = 0;
  /** Key group → HELD | FRESH. */
  groupFlags = new Uint8Array(0);
  /** Key group → its rows not yet emitted. */
  groupRows = new Int32Array(0);
  /** Key groups ever HELD, first-seen order; `fresh`: those FRESH. */
  readonly held: number[] = [];
  readonly fresh: number[] = [];

  constructor(
    readonly start: number,
    stride: number,
  ) {
    this.data = new Float64Array(FIRST_ROWS * stride);
  }
}

/**
 * Checkpoint changes. Keys are {@link KeyIndex.key}s: text when valid UTF-8, else their exact bytes, so a
 * hash field is always the key's exact bytes.
 */
export interface WindowDrain {
  writes: Array<{ keyGroup: number; start: number; fields: ByteString[] }>;
  opened: Array<{ keyGroup: number; start: number }>;
  closed: Array<{ keyGroup: number; start: number }>;
  /** Fields to delete: keys emitted from a window whose key group still has rows in it. */
  removed: Array<{ keyGroup: number; start: number; keys: ByteString[] }>;
}

/** What {@link WindowStage.addBytes} did with an event. */
export const ADDED = 0;
/** Every window of the event's time has closed: nothing changed. */
export const LATE = 1;
/** A sum (of a `sum` or `avg` aggregate) would stop being finite: nothing changed. */
export const OVERFLOW = 2;
export type AddResult = typeof ADDED | typeof LATE | typeof OVERFLOW;

const FN_SUM = 0;
const FN_MIN = 1;
const FN_MAX = 2;
const FN_AVG = 3;
const FN_COUNT = 4;

export class WindowStage {
  private readonly size: number;
  private readonly advance: number;
  private readonly grace: number;
  private readonly fns: Int8Array;
  /** Result field names after `key, window_start, window_end, count`. */
  private readonly names: string[];
  /** Per aggregate, its offset in a row of `data`, or -1 for `count` (it has no state of its own). */
  private readonly offsets: Int32Array;
  /** Per stored slot (offset - 1), its function and the index of its value in `add`'s `values`. */
  private readonly slotFns: Int8Array;
  private readonly slotValues: Int32Array;
  /** Row width in `data`: the count, then the slots. */
  private readonly stride: number;
  /** A new row's values. */
  private readonly empty: Float64Array;
  /** Whether a slot holds a sum (`sum`, `avg`): adding to it can overflow. */
  private readonly sums: boolean;
  /** An event can fall in several windows and a sum can overflow: check all before changing any. */
  private readonly checkFirst: boolean;
  /**
   * Scratch of `addChecked`, one slot per window an event can fall in: the window starts, their buckets
   * (null: not created yet) and the key's row (-1: not in the bucket yet), found before anything changes.
   */
  private readonly hitStarts: Float64Array;
  private readonly hitBuckets: Array<Bucket | null>;
  private readonly hitRows: Int32Array;
  /** After OVERFLOW: the result name of the aggregate and the window start (for the dead letter). */
  private overflowSlot = 0;
  private overflowStart = 0;
  private buckets: Bucket[] = [];
  private closedThisDrain: Array<{ keyGroup: number; start: number }> = [];

  constructor(cfg: WindowConfig) {
    this.size = cfg.size;
    this.advance = cfg.type === 'hopping' && cfg.advance !== undefined ? cfg.advance : cfg.size;
    this.grace = cfg.grace;
    this.fns = Int8Array.from(cfg.aggregates.map(fnCode));
    this.names = resultNames(cfg.aggregates);
    const stored = [...this.fns.keys()].filter((i) => this.fns[i] !== FN_COUNT);
    this.offsets = Int32Array.from(this.fns, (fn, i) => (fn === FN_COUNT ? -1 : 1 + stored.indexOf(i)));
    this.slotFns = Int8Array.from(stored, (i) => this.fns[i] as number);
    this.slotValues = Int32Array.from(stored);
    this.stride = 1 + stored.length;
    this.empty = Float64Array.from([0, ...this.slotFns].map((fn, c) => (c === 0 ? 0 : initial(fn))));
    this.sums = this.slotFns.some((fn) => fn === FN_SUM || fn === FN_AVG);
    this.checkFirst = this.sums && this.advance < this.size;
    const perEvent = Math.ceil(this.size / this.advance) + 1;
    this.hitStarts = new Float64Array(perEvent);
    this.hitBuckets = new Array<Bucket | null>(perEvent).fill(null);
    this.hitRows = new Int32Array(perEvent);
  }

  get openBuckets(): number {
    return this.buckets.length;
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
      const b = this.bucket(w);
      let row = b.index.find(bytes, start, end, hash);
      if (row < 0) {
        row = this.newRow(b, b.index.insert(bytes, start, end, hash), keyGroup);
        this.hold(b, keyGroup, HELD | FRESH);
      } else if (this.sums && this.overflows(b, row, values)) return OVERFLOW; // a new row starts at 0
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
      const b = this.findBucket(w);
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
      const b = this.hitBuckets[i] ?? this.bucket(this.hitStarts[i] as number);
      this.hitBuckets[i] = null; // hold no bucket past its close
      let row = this.hitRows[i] as number;
      if (row < 0) {
        row = this.newRow(b, b.index.insert(bytes, start, end, hash), keyGroup);
        this.hold(b, keyGroup, HELD | FRESH);
      }
      this.addTo(b, row, values);
    }
    return ADDED;
  }

  /** Whether adding `values` to `row` would make one of its sums infinite; records which for the message. */
  private overflows(b: Bucket, row: number, values: Float64Array): boolean {
    const d = b.data;
    const at = row * this.stride + 1;
    for (let c = 0; c < this.slotFns.length; c++) {
      const fn = this.slotFns[c];
      if (fn !== FN_SUM && fn !== FN_AVG) continue;
      const sum = (d[at + c] as number) + (values[this.slotValues[c] as number] as number);
      if (sum - sum !== 0) {
        // ±Infinity (the only non-finite sum of finite numbers) gives NaN here
        this.overflowSlot = this.slotValues[c] as number;
        this.overflowStart = b.start;
        return true;
      }
    }
    return false;
  }

  /** Why the last `addBytes` returned OVERFLOW. */
  overflowMessage(): string {
    const name = this.names[this.overflowSlot] as string;
    const start = this.overflowStart;
    return (
      `${name} of the key's window [${start}, ${start + this.size}) would exceed ` +
      `${Number.MAX_VALUE} in magnitude; the event changed no window (a value this large is usually a ` +
      'producer bug; if such sums are real, aggregate the field in a larger unit)'
    );
  }

  private addTo(b: Bucket, row: number, values: Float64Array): void {
    const d = b.data;
    const at = row * this.stride;
    d[at] = (d[at] as number) + 1;
    for (let c = 0; c < this.slotFns.length; c++) {
      const v = values[this.slotValues[c] as number] as number;
      const j = at + 1 + c;
      switch (this.slotFns[c]) {
        case FN_SUM:
        case FN_AVG:
          d[j] = (d[j] as number) + v;
          break;
        case FN_MIN:
          if (v < (d[j] as number)) d[j] = v;
          break;
        case FN_MAX:
          if (v > (d[j] as number)) d[j] = v;
          break;
      }
    }
    const f = b.flags[row] as number;
    if ((f & DIRTY) === 0) {
      b.flags[row] = f | DIRTY;
      if (b.dirtyCount === b.dirty.length) b.dirty = grown(b.dirty, b.dirtyCount * 2);
      b.dirty[b.dirtyCount++] = row;
    }
  }

  /**
   * Sets up `row`, just added to the bucket's index, holding `empty`; the caller records its key group
   * with `hold`.
   */
  private newRow(b: Bucket, row: number, keyGroup: number): number {
    b.rows++;
    if (row === b.group.length) {
      b.data = grown(b.data, row * 2 * this.stride);
      b.group = grown(b.group, row * 2);
      b.flags = grown(b.flags, row * 2);
    }
    b.group[row] = keyGroup;
    b.data.set(this.empty, row * this.stride);
    if (keyGroup >= b.groupRows.length) groupSlots(b, keyGroup);
    b.groupRows[keyGroup] = (b.groupRows[keyGroup] as number) + 1;
    return row;
  }

  private hold(b: Bucket, keyGroup: number, flags: number): void {
    if (((b.groupFlags[keyGroup] as number) & HELD) !== 0) return;
    b.groupFlags[keyGroup] = flags;
    b.held.push(keyGroup);
    if ((flags & FRESH) !== 0) b.fresh.push(keyGroup);
  }

  /** The bucket for `start`, or null. */
  private findBucket(start: number): Bucket | null {
    const bs = this.buckets;
    for (let i = bs.length - 1; i >= 0; i--) {
      const b = bs[i] as Bucket;
      if (b.start <= start) return b.start === start ? b : null;
    }
    return null;
  }

  /** The bucket for `start`, created in sorted position if missing (usually at the tail). */
  private bucket(start: number): Bucket {
    const bs = this.buckets;
    let i = bs.length - 1;
    while (i >= 0 && (bs[i] as Bucket).start > start) i--;
    if (i >= 0 && (bs[i] as Bucket).start === start) return bs[i] as Bucket;
    const b = new Bucket(start, this.stride);
    bs.splice(i + 1, 0, b);
    return b;
  }

  /** Whether a window is due at `streamTime` (`closeDue` has more to emit). */
  closePending(streamTime: number): boolean {
    const b = this.buckets[0];
    return b !== undefined && b.start + this.size + this.grace <= streamTime;
  }

  /**
   * Emits (into `out`) and forgets the windows due at `streamTime`, at most `maxResults` results per call
   * (at least one, if any is due): a window left partly emitted stays first and the next call goes on
   * with it. Results come in window start order, then first-insertion order of the keys. Returns how
   * many results.
   */
  closeDue(streamTime: number, out: ByteString[][], maxResults = Number.POSITIVE_INFINITY): number {
    const budget = maxResults >= 1 ? Math.floor(maxResults) : 1;
    let n = 0;
    while (this.buckets.length > 0) {
      const b = this.buckets[0] as Bucket;
      if (b.start + this.size + this.grace > streamTime) break;
      if (b.head < b.rows) {
        if (n === budget) break;
        const stop = Math.min(b.rows, b.head + (budget - n));
        n += stop - b.head;
        this.emit(b, stop, out);
        if (stop < b.rows) break;
      }
      this.buckets.shift();
      for (const g of b.held) {
        if (((b.groupFlags[g] as number) & HELD) !== 0)
          this.closedThisDrain.push({ keyGroup: g, start: b.start });
      }
    }
    return n;
  }

  /** Emits rows `head` to `stop`; a key group that runs out of rows before the bucket does is closed. */
  private emit(b: Bucket, stop: number, out: ByteString[][]): void {
    const start = String(b.start);
    const end = String(b.start + this.size);
    const partial = stop < b.rows;
    for (let row = b.head; row < stop; row++) {
      out.push(this.result(b.index.key(row), start, end, b.data, row * this.stride));
      const g = b.group[row] as number;
      const left = (b.groupRows[g] as number) - 1;
      b.groupRows[g] = left;
      if (left === 0 && partial) {
        b.groupFlags[g] = 0;
        this.closedThisDrain.push({ keyGroup: g, start: b.start });
      }
    }
    b.head = stop;
  }

  private result(key: ByteString, start: string, end: string, d: Float64Array, at: number): ByteString[] {
    const count = d[at] as number;
    const r: ByteString[] = ['key', key, 'window_start', start, 'window_end', end, 'count', String(count)];
    for (let i = 0; i < this.fns.length; i++) {
      const fn = this.fns[i];
      if (fn === FN_COUNT) continue;
      const v = d[at + (this.offsets[i] as number)] as number;
      r.push(this.names[i] as string, String(fn === FN_AVG ? v / count : v));
    }
    return r;
  }

  /** Checkpoint changes since the last call. */
  drain(): WindowDrain {
    const writes: WindowDrain['writes'] = [];
    const opened: WindowDrain['opened'] = [];
    const removed: WindowDrain['removed'] = [];
    for (const b of this.buckets) {
      for (const g of b.fresh) {
        if (((b.groupFlags[g] as number) & HELD) !== 0) opened.push({ keyGroup: g, start: b.start });
        b.groupFlags[g] = (b.groupFlags[g] as number) & ~FRESH;
      }
      b.fresh.length = 0;
      if (b.drainedHead < b.head) {
        const byGroup = new Map<number, ByteString[]>();
        for (let row = b.drainedHead; row < b.head; row++) {
          const g = b.group[row] as number;
          // A group no longer HELD was closed as a whole; a row never SAVED has no field to delete.
          if (((b.groupFlags[g] as number) & HELD) === 0 || ((b.flags[row] as number) & SAVED) === 0)
            continue;
          groupList(byGroup, g).push(b.index.key(row));
        }
        b.drainedHead = b.head;
        for (const [keyGroup, keys] of byGroup) removed.push({ keyGroup, start: b.start, keys });
      }
      if (b.dirtyCount === 0) continue;
      const byGroup = new Map<number, ByteString[]>();
      for (let i = 0; i < b.dirtyCount; i++) {
        const row = b.dirty[i] as number;
        if (row < b.head) {
          b.flags[row] = 0; // emitted: its field is in `removed` if it had one
          continue;
        }
        b.flags[row] = SAVED;
        const fields = groupList(byGroup, b.group[row] as number);
        fields.push(b.index.key(row), encodeAgg(b.data, row * this.stride, this.offsets));
      }
      b.dirtyCount = 0;
      for (const [keyGroup, fields] of byGroup) writes.push({ keyGroup, start: b.start, fields });
    }
    const closed = this.closedThisDrain;
    this.closedThisDrain = [];
    return { writes, opened, closed, removed };
  }

  /**
   * Restores one checkpointed bucket of one key group: `[key, encodedAggregate, …]`, each as text or as
   * the exact bytes read back from its hash (a key that is not valid UTF-8 must stay bytes).
   */
  restore(keyGroup: number, start: number, fields: readonly ByteString[]): void {
    const b = this.bucket(start);
    const parsed = new Float64Array(this.stride);
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const agg = fields[i + 1] as ByteString;
      const text = typeof agg === 'string' ? agg : latin1(agg, 0, agg.length);
      if (!decodeAgg(text, parsed, 0, this.offsets)) {
        throw new Error(
          `checkpoint of window ${start} (key group ${keyGroup}) does not match the configured aggregates; ` +
            'the window stage changed since it was written',
        );
      }
      const { row: at, added } = b.index.rowOf(fields[i] as ByteString);
      const row = added ? this.newRow(b, at, keyGroup) : at;
      b.data.set(parsed, row * this.stride);
      b.flags[row] = (b.flags[row] as number) | SAVED;
    }
    if (keyGroup >= b.groupRows.length) groupSlots(b, keyGroup);
    this.hold(b, keyGroup, HELD); // its window index entry exists already
  }
}

/** Grows the per-key-group arrays of `b` to hold `keyGroup` (to a power of two). */
function groupSlots(b: Bucket, keyGroup: number): void {
  const n = Math.max(64, 2 ** Math.ceil(Math.log2(keyGroup + 1)));
  b.groupRows = grown(b.groupRows, n);
  b.groupFlags = grown(b.groupFlags, n);
}

function groupList(byGroup: Map<number, ByteString[]>, g: number): ByteString[] {
  let list = byGroup.get(g);
  if (list === undefined) {
    list = [];
    byGroup.set(g, list);
  }
  return list;
}

type Column = Float64Array | Int32Array | Uint16Array | Uint8Array;

/** A copy of `a` with room for `length` elements. */
function grown<T extends Column>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(length, FIRST_ROWS));
  b.set(a);
  return b;
}

function initial(fn: number): number {
  return fn === FN_MIN ? Number.POSITIVE_INFINITY : fn === FN_MAX ? Number.NEGATIVE_INFINITY : 0;
}

function fnCode(a: Aggregate): number {
  switch (a.fn) {
    case 'sum':
      return FN_SUM;
    case 'min':
      return FN_MIN;
    case 'max':
      return FN_MAX;
    case 'avg':
      return FN_AVG;
    case 'count':
      return FN_COUNT;
  }
}

/** `<fn>_<field>` per aggregate (`count` has no field of its own: it is always emitted as `count`). */
export function resultNames(aggregates: Aggregate[]): string[] {
  return aggregates.map((a) =>
    a.fn === 'count' ? 'count' : `${a.fn}_${(a.field ?? '').replaceAll('.', '_')}`,
  );
}

/**
 * The checkpoint text of the aggregate at `data[at]`: `count,slot1,slot2,…`, one slot per aggregate at
 * `data[at + offsets[i]]`; a `count` aggregate (offset -1) has no state and is written as 0.
 */
export function encodeAgg(data: Float64Array, at: number, offsets: Int32Array): string {
  let s = String(data[at]);
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i] as number;
    s += o < 0 ? ',0' : `,${data[at + o]}`;
  }
  return s;
}

/** Parses checkpoint text into `data[at…]` (see `encodeAgg`); false when the number of slots differs. */
export function decodeAgg(text: string, data: Float64Array, at: number, offsets: Int32Array): boolean {
  const parts = text.split(',');
  if (parts.length !== 1 + offsets.length) return false;
  data[at] = Number(parts[0]);
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i] as number;
    if (o >= 0) data[at + o] = Number(parts[1 + i]);
  }
  return true;
}

/**
 * The window stage's state. Windows are epoch-aligned, so every key shares the same window starts: state
 * is a sorted list of *buckets*, one per window start, and closing is a walk from its head (closing.ts).
 * A bucket is columnar and holds no object per key: a key index over the keys' bytes (keyIndex.ts) gives
 * its row, and the row's state lives in typed arrays shared by all rows. Measured with 1M short keys
 * (`u0…`) in one bucket, count/sum/min/max (`--expose-gc`, heap + array buffers): ~62 bytes per open
 * (key, window), all of it in array buffers (101 with a `Map` entry and a key string per row, ~300 with a
 * Float64Array object per key); up to ~1.5× that just past a power-of-two row count (96 at 600k), as the
 * arrays double.
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
 * Rows are appended, so row order is first-insertion order: the order results are emitted in. A row's
 * numbers are laid out by aggregates.ts. Arrays grow by doubling. Per bucket, key groups are tracked in
 * arrays indexed by key group, grown to the largest one seen (the config's `keyGroups` is typically 256).
 */
import { KeyIndex } from './keyIndex.js';

/** Key group flags: the key group has a checkpoint hash for this bucket (and its window index entry). */
export const HELD = 1;
/** … that got its first row since the last drain: its window index entry is still to be written. */
export const FRESH = 2;
/** Row flags: the row is listed in `dirty`; the row has been checkpointed (its field may need deleting). */
export const DIRTY = 1;
export const SAVED = 2;
const FIRST_ROWS = 16;

/** One key group's part of one bucket: a checkpoint hash and its window index entry. */
export interface BucketRef {
  keyGroup: number;
  start: number;
}

export class Bucket {
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
    /** Row width in `data` (aggregates.ts). */
    private readonly stride: number,
  ) {
    this.data = new Float64Array(FIRST_ROWS * stride);
  }

  /**
   * Sets up `row`, just added to the index, holding `initial` (a row's worth of numbers); the caller
   * records its key group with {@link hold}.
   */
  newRow(row: number, keyGroup: number, initial: Float64Array): number {
    this.rows++;
    if (row === this.group.length) {
      this.data = grown(this.data, row * 2 * this.stride);
      this.group = grown(this.group, row * 2);
      this.flags = grown(this.flags, row * 2);
    }
    this.group[row] = keyGroup;
    this.data.set(initial, row * this.stride);
    if (keyGroup >= this.groupRows.length) this.fitGroup(keyGroup);
    this.groupRows[keyGroup] = (this.groupRows[keyGroup] as number) + 1;
    return row;
  }

  /** Lists a changed row in `dirty`, once until the next drain. */
  markDirty(row: number): void {
    const f = this.flags[row] as number;
    if ((f & DIRTY) !== 0) return;
    this.flags[row] = f | DIRTY;
    if (this.dirtyCount === this.dirty.length) this.dirty = grown(this.dirty, this.dirtyCount * 2);
    this.dirty[this.dirtyCount++] = row;
  }

  /** Records that `keyGroup` holds state in this bucket (`flags`: HELD, and FRESH when not yet indexed). */
  hold(keyGroup: number, flags: number): void {
    if (((this.groupFlags[keyGroup] as number) & HELD) !== 0) return;
    this.groupFlags[keyGroup] = flags;
    this.held.push(keyGroup);
    if ((flags & FRESH) !== 0) this.fresh.push(keyGroup);
  }

  /** Grows the per-key-group arrays to hold `keyGroup` (to a power of two). */
  fitGroup(keyGroup: number): void {
    const n = Math.max(64, 2 ** Math.ceil(Math.log2(keyGroup + 1)));
    this.groupRows = grown(this.groupRows, n);
    this.groupFlags = grown(this.groupFlags, n);
  }
}

/**
 * The open buckets, sorted by start: few at a time (about `(size + grace) / advance + 1`), so a search from
 * the tail, where new events land, is short. Also records which key groups' hashes closed since the last
 * checkpoint drain.
 */
export class Buckets {
  private readonly list: Bucket[] = [];
  private closed: BucketRef[] = [];

  constructor(
    /** Row width of every bucket (aggregates.ts). */
    private readonly stride: number,
  ) {}

  get count(): number {
    return this.list.length;
  }

  /** The open buckets in start order (not to be changed by the caller). */
  get all(): readonly Bucket[] {
    return this.list;
  }

  /** The bucket with the earliest start, the next to close. */
  get first(): Bucket | undefined {
    return this.list[0];
  }

  /** The bucket for `start`, or null. */
  find(start: number): Bucket | null {
    const bs = this.list;
    for (let i = bs.length - 1; i >= 0; i--) {
      const b = bs[i] as Bucket;
      if (b.start <= start) return b.start === start ? b : null;
    }
    return null;
  }

  /** The bucket for `start`, created in sorted position if missing (usually at the tail). */
  get(start: number): Bucket {
    const bs = this.list;
    let i = bs.length - 1;
    while (i >= 0 && (bs[i] as Bucket).start > start) i--;
    if (i >= 0 && (bs[i] as Bucket).start === start) return bs[i] as Bucket;
    const b = new Bucket(start, this.stride);
    bs.splice(i + 1, 0, b);
    return b;
  }

  /** Forgets the first bucket, every row emitted: the hashes its key groups still hold close. */
  dropFirst(): void {
    const b = this.list.shift();
    if (b === undefined) return;
    for (const g of b.held) {
      if (((b.groupFlags[g] as number) & HELD) !== 0) this.closed.push({ keyGroup: g, start: b.start });
    }
  }

  /** The last row of `keyGroup` in `b` was emitted while `b` stays (a close in slices): its hash closes. */
  closeGroup(b: Bucket, keyGroup: number): void {
    b.groupFlags[keyGroup] = 0;
    this.closed.push({ keyGroup, start: b.start });
  }

  /** The hashes closed since the last call. */
  takeClosed(): BucketRef[] {
    const closed = this.closed;
    this.closed = [];
    return closed;
  }
}

type Column = Float64Array | Int32Array | Uint16Array | Uint8Array;

/** A copy of `a` with room for `length` elements. */
function grown<T extends Column>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(length, FIRST_ROWS));
  b.set(a);
  return b;
}

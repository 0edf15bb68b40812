/**
 * One shard batch as ONE ArrayBuffer, so that handing it to a worker is a transfer (zero-copy), not a
 * structured clone of hundreds of Buffers (Buffers from Node's shared pool cannot be transferred).
 *
 *   batch  := count:u32  entry*
 *   entry  := keyGroup:u16  keyField:u16  deliveries:u16  idLen:u16  id  nFields:u16  (len:u32 bytes)*
 *
 * `keyField` is the index (in the field list) of the value holding the key, 0xFFFF when absent; the main
 * thread found it while routing, so the worker does not search again. Names and values alternate.
 * `deliveries` is the entry's delivery count (1 for a first read; from XPENDING on a re-read, at most
 * {@link MAX_DELIVERIES}), with the {@link POISON} bit set for an entry that crashed the shard worker
 * repeatedly and must only be dead-lettered.
 */

export const NO_KEY = 0xffff;
/** Delivery-count flag: dead-letter this entry without processing it (it crashed the worker). */
export const POISON = 0x8000;
export const MAX_DELIVERIES = 0x7fff;

/** An entry as the main thread holds it: Buffers straight from the Redis reply. */
export interface RawEntry {
  id: Buffer;
  fields: Buffer[];
}

/** Bytes one entry takes in a batch. */
export function entrySize(e: RawEntry): number {
  let n = 10 + e.id.length;
  for (const f of e.fields) n += 4 + f.length;
  return n;
}

/** Writes one entry at `o` (see the layout above); returns the offset after it. */
export function writeEntry(
  view: DataView,
  bytes: Uint8Array,
  o: number,
  e: RawEntry,
  keyGroup: number,
  keyField: number,
  deliveries: number,
): number {
  view.setUint16(o, keyGroup, true);
  view.setUint16(o + 2, keyField, true);
  view.setUint16(o + 4, deliveries, true);
  view.setUint16(o + 6, e.id.length, true);
  bytes.set(e.id, o + 8);
  o += 8 + e.id.length;
  view.setUint16(o, e.fields.length, true);
  o += 2;
  for (const f of e.fields) {
    view.setUint32(o, f.length, true);
    bytes.set(f, o + 4);
    o += 4 + f.length;
  }
  return o;
}

/** Writes entries into a fresh ArrayBuffer of exactly `size` bytes (the sum of entrySize + 4). */
export function packBatch(
  entries: RawEntry[],
  keyGroups: Uint16Array,
  keyFields: Uint16Array,
  size: number,
  /** Delivery count per entry; absent = all first deliveries. */
  deliveries?: Uint16Array,
): ArrayBuffer {
  const buf = new ArrayBuffer(size);
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  view.setUint32(0, entries.length, true);
  let o = 4;
  for (let i = 0; i < entries.length; i++) {
    const d = deliveries === undefined ? 1 : (deliveries[i] as number);
    o = writeEntry(view, bytes, o, entries[i] as RawEntry, keyGroups[i] as number, keyFields[i] as number, d);
  }
  return buf;
}

/** A cursor over a packed batch: no allocation per entry beyond the field views it hands out. */
export class BatchReader {
  readonly count: number;
  private readonly view: DataView;
  /** The whole batch; fields are ranges of it (`fieldStart`, `fieldEnd`). */
  readonly bytes: Uint8Array;
  private offset = 4;
  /** Index of the current entry in the batch. */
  index = -1;
  keyGroup = 0;
  keyField = NO_KEY;
  deliveries = 1;
  /** The entry crashed the worker on every try: dead-letter it only. */
  poison = false;
  idStart = 0;
  idEnd = 0;
  /** Fields of the current entry (names at even, values at odd indexes), as byte ranges of the batch. */
  fieldCount = 0;
  private starts = new Int32Array(32);
  private ends = new Int32Array(32);

  constructor(buf: ArrayBuffer) {
    this.view = new DataView(buf);
    this.bytes = new Uint8Array(buf);
    this.count = this.view.getUint32(0, true);
  }

  /** Moves to the next entry; false at the end. */
  next(): boolean {
    if (this.index + 1 >= this.count) return false;
    this.index++;
    const v = this.view;
    let o = this.offset;
    this.keyGroup = v.getUint16(o, true);
    this.keyField = v.getUint16(o + 2, true);
    const d = v.getUint16(o + 4, true);
    this.deliveries = d & MAX_DELIVERIES;
    this.poison = (d & POISON) !== 0;
    const idLen = v.getUint16(o + 6, true);
    this.idStart = o + 8;
    this.idEnd = o + 8 + idLen;
    o = this.idEnd;
    const n = v.getUint16(o, true);
    o += 2;
    if (n > this.starts.length) {
      this.starts = new Int32Array(n);
      this.ends = new Int32Array(n);
    }
    this.fieldCount = n;
    for (let i = 0; i < n; i++) {
      const len = v.getUint32(o, true);
      this.starts[i] = o + 4;
      this.ends[i] = o + 4 + len;
      o += 4 + len;
    }
    this.offset = o;
    return true;
  }

  /** Field `i` of the current entry (a view: valid while the batch buffer is). */
  field(i: number): Uint8Array {
    return this.bytes.subarray(this.starts[i] as number, this.ends[i] as number);
  }

  fieldStart(i: number): number {
    return this.starts[i] as number;
  }

  fieldEnd(i: number): number {
    return this.ends[i] as number;
  }

  fieldLength(i: number): number {
    return (this.ends[i] as number) - (this.starts[i] as number);
  }

  /** True when field `i` holds exactly `bytes` (compared in place, no view or string). */
  fieldIs(i: number, bytes: Uint8Array): boolean {
    const start = this.starts[i] as number;
    if ((this.ends[i] as number) - start !== bytes.length) return false;
    const b = this.bytes;
    for (let k = 0; k < bytes.length; k++) if (b[start + k] !== bytes[k]) return false;
    return true;
  }

  /** Every field of the current entry, as views (for dead-letter and pass-through copies). */
  fields(): Uint8Array[] {
    const out: Uint8Array[] = new Array(this.fieldCount);
    for (let i = 0; i < this.fieldCount; i++) out[i] = this.field(i);
    return out;
  }

  /** The current entry's ID bytes (a view: valid while the batch buffer is). */
  idBytes(): Uint8Array {
    return this.bytes.subarray(this.idStart, this.idEnd);
  }

  id(): string {
    return latin1(this.bytes, this.idStart, this.idEnd);
  }
}

/** Stream IDs and field names are ASCII: decode without TextDecoder's per-call overhead. */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i] as number);
  return s;
}

/** Byte ranges `[start, end)` of each entry in a packed batch. */
function entryRanges(buf: ArrayBuffer): Array<[number, number]> {
  const v = new DataView(buf);
  const count = v.getUint32(0, true);
  const ranges: Array<[number, number]> = [];
  let o = 4;
  for (let i = 0; i < count; i++) {
    const start = o;
    o += 8 + v.getUint16(o + 6, true);
    const n = v.getUint16(o, true);
    o += 2;
    for (let f = 0; f < n; f++) o += 4 + v.getUint32(o, true);
    ranges.push([start, o]);
  }
  return ranges;
}

/**
 * Splits a packed batch into one batch per entry (to find which entry crashes a worker), marking the
 * entries at `poison` indexes with {@link POISON}.
 */
export function splitBatch(buf: ArrayBuffer, poison: ReadonlySet<number> = new Set()): ArrayBuffer[] {
  const src = new Uint8Array(buf);
  return entryRanges(buf).map(([start, end], i) => {
    const one = new ArrayBuffer(4 + end - start);
    const view = new DataView(one);
    view.setUint32(0, 1, true);
    new Uint8Array(one).set(src.subarray(start, end), 4);
    if (poison.has(i)) view.setUint16(4 + 4, view.getUint16(4 + 4, true) | POISON, true);
    return one;
  });
}

/**
 * One shard batch as ONE ArrayBuffer, so that handing it to a worker is a transfer (zero-copy), not a
 * structured clone of hundreds of Buffers (Buffers from Node's shared pool cannot be transferred). This
 * file owns the layout: {@link BatchWriter.add} writes every entry (the router's open batches extend the
 * writer), {@link BatchReader} reads it, {@link splitBatch} cuts it.
 *
 *   batch  := count:u32  entry*
 *   entry  := keyGroup:u16  flags:u16  deliveries:u32  keyField:u32  idLen:u32  nFields:u32
 *             [size:f64, when flags has OVERSIZED]  id  (len:u32  bytes){nFields}
 *
 * Every count and index is 32 bits wide, so no entry Redis can hold overflows it (a 16-bit field count
 * made the worker read the rest of a batch as garbage after an entry of 32,768+ field pairs). Key groups
 * stay 16 bits: `keyGroups` is at most 65,536.
 *
 * `keyField` is the index (in the field list) of the value holding the key, {@link NO_KEY} when absent;
 * the main thread found it while routing, so the worker does not search again. Names and values
 * alternate. `deliveries` is the entry's delivery count (1 for a first read; from XPENDING on a re-read).
 * `flags`: {@link POISON} marks an entry that crashed the shard worker repeatedly and must only be
 * dead-lettered; {@link OVERSIZED} an entry larger than `source.maxEntryBytes`, whose fields were not
 * copied: it carries only its key's name and value (when present and at most {@link MAX_KEY_COPY} bytes)
 * and its size, and is dead-lettered as `E_ENTRY_TOO_LARGE`; {@link WRONG_PARTITION} an entry whose key
 * belongs to another partition.
 */
import { ByteWriter, copyBytes } from '../util/bytes.js';

export const NO_KEY = 0xffffffff;
/** Flag: dead-letter this entry without processing it (it crashed the worker). */
export const POISON = 0x1;
/** Flag: the entry was too large to copy; only its key (if any) and its size are in the batch. */
export const OVERSIZED = 0x2;
/**
 * Flag: the entry's key belongs to another partition (a producer wrote it to the wrong stream); it is
 * dead-lettered as `E_WRONG_PARTITION`, never processed — its state lives under the other partition.
 */
export const WRONG_PARTITION = 0x4;
/** The most bytes of a key an oversized entry carries (for its shard and its dead letter). */
export const MAX_KEY_COPY = 4096;

/** Byte offsets inside an entry's header. */
const FLAGS_AT = 2;
const HEAD = 20;

/** How an entry is routed: written into its header. */
export interface EntryHead {
  keyGroup: number;
  keyField: number;
  deliveries: number;
  flags: number;
}

/**
 * A batch being written: `count:u32` then the entries. The router's open batches extend it; the worker
 * gets {@link take}'s buffer.
 */
export class BatchWriter extends ByteWriter {
  private count = 0;

  constructor(size = 64 * 1024) {
    super(size, 4);
  }

  get size(): number {
    return this.count;
  }

  /**
   * Appends one entry whose ID is `src[idStart, idStart + idLen)` and whose `n` fields are
   * `src[starts[i], starts[i] + lens[i])`. With {@link OVERSIZED} in `head.flags`, `size` is the
   * entry's size in bytes (the fields given are then only its key's name and value, or none).
   */
  add(
    src: Uint8Array,
    idStart: number,
    idLen: number,
    n: number,
    starts: Int32Array,
    lens: Int32Array,
    head: EntryHead,
    size = 0,
  ): void {
    const oversized = (head.flags & OVERSIZED) !== 0;
    let bytes = HEAD + (oversized ? 8 : 0) + idLen + 4 * n;
    for (let i = 0; i < n; i++) bytes += lens[i] as number;
    this.ensure(bytes);
    const v = this.view;
    let o = this.pos;
    v.setUint16(o, head.keyGroup, true);
    v.setUint16(o + FLAGS_AT, head.flags, true);
    v.setUint32(o + 4, head.deliveries, true);
    v.setUint32(o + 8, head.keyField, true);
    v.setUint32(o + 12, idLen, true);
    v.setUint32(o + 16, n, true);
    o += HEAD;
    if (oversized) {
      v.setFloat64(o, size, true);
      o += 8;
    }
    copyBytes(src, idStart, idStart + idLen, this.buf, o);
    o += idLen;
    for (let i = 0; i < n; i++) {
      const start = starts[i] as number;
      const len = lens[i] as number;
      v.setUint32(o, len, true);
      copyBytes(src, start, start + len, this.buf, o + 4);
      o += 4 + len;
    }
    this.pos = o;
    this.count++;
  }

  /** A copy of the batch so far, as its own ArrayBuffer (transferable). */
  snapshot(): ArrayBuffer {
    this.view.setUint32(0, this.count, true);
    return this.finish().buffer;
  }

  /** The batch as its own ArrayBuffer, and a reset. */
  take(): { count: number; buf: ArrayBuffer } {
    const buf = this.snapshot();
    const count = this.count;
    this.pos = 4;
    this.count = 0;
    return { count, buf };
  }
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
  /** Byte range of the current entry in the batch (for {@link splitBatch}). */
  entryStart = 0;
  entryEnd = 0;
  keyGroup = 0;
  keyField = NO_KEY;
  deliveries = 1;
  /** The entry crashed the worker on every try: dead-letter it only. */
  poison = false;
  /** The entry's key belongs to another partition ({@link WRONG_PARTITION}). */
  wrongPartition = false;
  /** The entry's size in bytes when it was too large to copy ({@link OVERSIZED}); -1 otherwise. */
  oversizedBytes = -1;
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
    this.entryStart = o;
    this.keyGroup = v.getUint16(o, true);
    const flags = v.getUint16(o + FLAGS_AT, true);
    this.poison = (flags & POISON) !== 0;
    this.wrongPartition = (flags & WRONG_PARTITION) !== 0;
    this.deliveries = v.getUint32(o + 4, true);
    this.keyField = v.getUint32(o + 8, true);
    const idLen = v.getUint32(o + 12, true);
    const n = v.getUint32(o + 16, true);
    o += HEAD;
    if ((flags & OVERSIZED) !== 0) {
      this.oversizedBytes = v.getFloat64(o, true);
      o += 8;
    } else this.oversizedBytes = -1;
    this.idStart = o;
    this.idEnd = o + idLen;
    o = this.idEnd;
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
    this.entryEnd = o;
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

/**
 * Splits a packed batch into one batch per entry (to find which entry crashes a worker), marking the
 * entries at `poison` indexes with {@link POISON}. Entries are copied whole, as written.
 */
export function splitBatch(buf: ArrayBuffer, poison: ReadonlySet<number> = new Set()): ArrayBuffer[] {
  const r = new BatchReader(buf);
  const out: ArrayBuffer[] = [];
  while (r.next()) {
    const one = new ArrayBuffer(4 + r.entryEnd - r.entryStart);
    const view = new DataView(one);
    view.setUint32(0, 1, true);
    new Uint8Array(one).set(r.bytes.subarray(r.entryStart, r.entryEnd), 4);
    if (poison.has(r.index)) view.setUint16(4 + FLAGS_AT, view.getUint16(4 + FLAGS_AT, true) | POISON, true);
    out.push(one);
  }
  return out;
}

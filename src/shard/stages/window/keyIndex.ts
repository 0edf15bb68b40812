/**
 * Byte-string keys → rows (0, 1, 2, … in insertion order): the key index of one window bucket.
 *
 * The keys' bytes live in one arena and the table is open addressing (linear probing, load ≤ 1/2) over
 * Int32Arrays, so a bucket with a million keys is a handful of typed arrays instead of a million strings
 * and `Map` entries on the heap: per key its bytes plus 12–20 bytes (hash, end offset, one or two table
 * slots) instead of ~60, and nothing for the garbage collector to trace. A key is looked up straight
 * from the batch buffer's bytes: no string per event.
 *
 *   slots   hash → row + 1 (0 = empty)      [0][2][0][1][3][0][0][0]
 *   hashes  row → FNV-1a of the key          h0  h1  h2
 *   ends    row → end of its bytes in arena  2   5   9      (row r starts at ends[r - 1], row 0 at 0)
 *   arena   the keys' bytes, appended        a b c d e f g h i
 */
import { isUtf8 } from 'node:buffer';
import { fnv1a, spread } from '../../../routing/hash.js';
import { type ByteString, bytesEqual, copyBytes } from '../../../util/bytes.js';

const FIRST_ROWS = 16;
/** Fatal: invalid UTF-8 must not become U+FFFD (two keys would merge); ignoreBOM: a leading BOM is key bytes. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

export class KeyIndex {
  /** Keys held; the rows are 0 … size - 1. */
  size = 0;
  private slots = new Int32Array(FIRST_ROWS * 2);
  private hashes = new Int32Array(FIRST_ROWS);
  private ends = new Int32Array(FIRST_ROWS);
  private arena = new Uint8Array(FIRST_ROWS * 16);

  /** The row of the key `bytes[start, end)` (whose `fnv1a` is `hash`), or -1 when it is not held. */
  find(bytes: Uint8Array, start: number, end: number, hash: number): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    const h = hash | 0;
    for (let i = spread(h) & mask; ; i = (i + 1) & mask) {
      const s = slots[i] as number;
      if (s === 0) return -1;
      if (this.hashes[s - 1] === h && this.equals(s - 1, bytes, start, end)) return s - 1;
    }
  }

  /** Adds a key that `find` did not find; returns its row. */
  insert(bytes: Uint8Array, start: number, end: number, hash: number): number {
    const row = this.size++;
    if (row === this.hashes.length) {
      this.hashes = grown(this.hashes, row * 2);
      this.ends = grown(this.ends, row * 2);
    }
    if (this.size * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const from = row === 0 ? 0 : (this.ends[row - 1] as number);
    const to = from + end - start;
    if (to > this.arena.length) {
      const a = new Uint8Array(Math.max(to, this.arena.length * 2));
      a.set(this.arena.subarray(0, from));
      this.arena = a;
    }
    copyBytes(bytes, start, end, this.arena, from);
    this.ends[row] = to;
    this.hashes[row] = hash | 0;
    this.place(row);
    return row;
  }

  /** The row of a key, added if missing (restores and tests; the hot path passes a range of a batch). */
  rowOf(key: ByteString): { row: number; added: boolean } {
    const bytes = typeof key === 'string' ? encoder.encode(key) : key;
    const hash = fnv1a(bytes);
    const row = this.find(bytes, 0, bytes.length, hash);
    if (row >= 0) return { row, added: false };
    return { row: this.insert(bytes, 0, bytes.length, hash), added: true };
  }

  /**
   * The key of `row` for a result or a checkpoint field: a string when its bytes are valid UTF-8 (the
   * commit encodes it back to the same bytes), else a copy of the bytes. Never a lossy decode: `\xff` and
   * `\xfe` must stay two keys.
   */
  key(row: number): ByteString {
    const start = row === 0 ? 0 : (this.ends[row - 1] as number);
    const end = this.ends[row] as number;
    const a = this.arena;
    // Concatenating chars makes a flat string only below V8's 13-char rope threshold; a rope would be
    // flattened (copied) again when the commit encodes it.
    if (end - start > 12) return longKey(a.subarray(start, end));
    let s = '';
    for (let i = start; i < end; i++) {
      const c = a[i] as number;
      if (c >= 0x80) return nonAscii(a.subarray(start, end));
      s += String.fromCharCode(c);
    }
    return s;
  }

  /** Bytes held by the index's arrays (capacity, not just what is used). */
  get byteLength(): number {
    return this.slots.byteLength + this.hashes.byteLength + this.ends.byteLength + this.arena.byteLength;
  }

  private equals(row: number, bytes: Uint8Array, start: number, end: number): boolean {
    const from = row === 0 ? 0 : (this.ends[row - 1] as number);
    return (
      (this.ends[row] as number) - from === end - start && bytesEqual(this.arena, from, bytes, start, end)
    );
  }

  private place(row: number): void {
    const slots = this.slots;
    const mask = slots.length - 1;
    let i = spread(this.hashes[row] as number) & mask;
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = row + 1;
  }

  private rehash(capacity: number): void {
    this.slots = new Int32Array(capacity);
    for (let row = 0; row < this.size - 1; row++) this.place(row); // the new row is placed by insert
  }
}

/**
 * A key of 13 bytes or more. The fatal decoder costs what the lossy one did on valid keys (~90 ns for 23
 * ASCII bytes, measured), so valid keys pay nothing for the check; an invalid one pays its exception
 * (~4 µs, measured), and only keys that are not valid UTF-8 do.
 */
function longKey(bytes: Uint8Array): ByteString {
  try {
    return utf8.decode(bytes);
  } catch {
    return bytes.slice();
  }
}

/** A short key with a byte ≥ 0x80: checked first (~0.1 µs), since an exception would cost ~4 µs. */
function nonAscii(bytes: Uint8Array): ByteString {
  return isUtf8(bytes) ? utf8.decode(bytes) : bytes.slice();
}

function grown(a: Int32Array, length: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(length);
  b.set(a);
  return b;
}

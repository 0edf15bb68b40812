/**
 * The msgpack body decoder. Bodies are nearly always a flat map of short string keys to scalars
 * (`{id, ts, amount, type}`); for those a dedicated pass builds the object directly — no per-call
 * DataView/Uint8Array setup, map keys from a small cache — and everything else (nested maps, arrays,
 * binary, 64-bit integers, extension types, malformed or trailing bytes) goes to `@msgpack/msgpack`'s
 * general decoder, which also produces the errors. Both give the same value for every input
 * (test/msgpackBody.test.ts compares them on random and damaged bodies).
 *
 * When no stage needs the whole body (no filter), {@link MsgpackBodyDecoder.project} reads only the
 * top-level fields the shard uses (event time, ID, aggregated fields) straight from the batch bytes and
 * skips the others without making strings or an object; whatever it cannot skip goes the full way.
 */
import { Decoder } from '@msgpack/msgpack';
import { latin1 } from '../../routing/batchCodec.js';

const FALLBACK = Symbol('fallback');
const scratchBytes = new Uint8Array(8);
const scratch = new DataView(scratchBytes.buffer);
const utf8 = new TextDecoder('utf-8', { fatal: false });

export class MsgpackBodyDecoder {
  private readonly general = new Decoder();
  /** Map keys seen so far (bodies repeat the same few), by length and bytes. */
  private readonly keyCache = new Map<number, Array<{ bytes: Uint8Array; text: string }>>();
  private bytes: Uint8Array = new Uint8Array(0);
  private pos = 0;
  /** End of the body within `bytes`. */
  private end = 0;

  /** The body `bytes[start, end)` (default: all of `bytes`). @throws on a malformed body */
  decode(bytes: Uint8Array, start = 0, end = bytes.length): unknown {
    const fast = this.flatMap(bytes, start, end);
    if (fast !== FALLBACK) return fast;
    return this.general.decode(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
  }

  /**
   * Reads the top-level fields named `names` (UTF-8 bytes, none a property of `Object.prototype`) of the
   * flat-map body `bytes[start, end)` into `values` (undefined where absent; the last occurrence wins,
   * as in the decoded object). Returns false when the body is not a flat map of scalars this pass reads
   * — then nothing is known and the caller decodes it fully. Where it returns true, {@link decode} would
   * have returned an object with the same values under those names.
   */
  project(bytes: Uint8Array, start: number, end: number, names: Uint8Array[], values: unknown[]): boolean {
    const n = this.mapHeader(bytes, start, end);
    if (n < 0) return false;
    values.fill(undefined);
    for (let i = 0; i < n; i++) {
      const at = this.keyBytes();
      if (at < 0) return false;
      const slot = wanted(this.bytes, at, this.pos - at, names);
      if (slot === NOT_ASCII) return false;
      if (slot === UNWANTED) {
        if (!this.skipScalar()) return false;
        continue;
      }
      const value = this.scalar();
      if (value === FALLBACK) return false;
      values[slot] = value;
    }
    return this.pos === end;
  }

  /** Starts reading a map at `start`: its size, or -1 when `bytes[start]` does not begin one. */
  private mapHeader(bytes: Uint8Array, start: number, end: number): number {
    this.bytes = bytes;
    this.end = end;
    if (start >= end) return -1;
    const first = bytes[start] as number;
    if (first >= 0x80 && first <= 0x8f) {
      this.pos = start + 1;
      return first & 0x0f;
    }
    if (first === 0xde && start + 3 <= end) {
      this.pos = start + 3;
      return ((bytes[start + 1] as number) << 8) | (bytes[start + 2] as number);
    }
    return -1;
  }

  private flatMap(bytes: Uint8Array, start: number, end: number): Record<string, unknown> | typeof FALLBACK {
    const n = this.mapHeader(bytes, start, end);
    if (n < 0) return FALLBACK;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.key();
      if (key === FALLBACK) return FALLBACK;
      const value = this.scalar();
      if (value === FALLBACK) return FALLBACK;
      out[key] = value;
    }
    return this.pos === end ? out : FALLBACK;
  }

  /** Steps over the scalar at `pos` (the kinds {@link scalar} reads); false for anything else. */
  private skipScalar(): boolean {
    const b = this.bytes;
    const p = this.pos;
    const t = b[p];
    let size: number;
    if (t === undefined) return false;
    if (t <= 0x7f || t >= 0xe0) size = 1;
    else if (t >= 0xa0 && t <= 0xbf) size = 1 + (t & 0x1f);
    else {
      switch (t) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          size = 1;
          break;
        case 0xcc:
        case 0xd0:
          size = 2;
          break;
        case 0xcd:
        case 0xd1:
          size = 3;
          break;
        case 0xce:
        case 0xd2:
        case 0xca:
          size = 5;
          break;
        case 0xcf:
        case 0xd3:
        case 0xcb:
          size = 9;
          break;
        case 0xd9:
          if (p + 2 > this.end) return false;
          size = 2 + (b[p + 1] as number);
          break;
        case 0xda:
          if (p + 3 > this.end) return false;
          size = 3 + (((b[p + 1] as number) << 8) | (b[p + 2] as number));
          break;
        default:
          return false;
      }
    }
    if (p + size > this.end) return false;
    this.pos = p + size;
    return true;
  }

  /**
   * Steps over a fixstr/str8 map key: returns where its bytes start (they end at the new `pos`), or -1
   * for any other kind of key or one cut short.
   */
  private keyBytes(): number {
    const b = this.bytes;
    const t = b[this.pos];
    let len: number;
    let start: number;
    if (t === undefined) return -1;
    if (t >= 0xa0 && t <= 0xbf) {
      len = t & 0x1f;
      start = this.pos + 1;
    } else if (t === 0xd9 && this.pos + 1 < this.end) {
      len = b[this.pos + 1] as number;
      start = this.pos + 2;
    } else return -1;
    if (start + len > this.end) return -1;
    this.pos = start + len;
    return start;
  }

  /** A fixstr/str8 map key (not `__proto__`), or FALLBACK. */
  private key(): string | typeof FALLBACK {
    const start = this.keyBytes();
    if (start < 0) return FALLBACK;
    const b = this.bytes;
    const end = this.pos;
    const len = end - start;
    const list = this.keyCache.get(len);
    if (list !== undefined) {
      for (const k of list) if (sameBytes(k.bytes, b, start, end)) return k.text;
    }
    const text = utf8.decode(b.subarray(start, end));
    if (text === '__proto__' || !clean(text)) return FALLBACK;
    if (list === undefined) this.keyCache.set(len, [{ bytes: b.slice(start, end), text }]);
    else if (list.length < 16) list.push({ bytes: b.slice(start, end), text });
    return text;
  }

  /** A string, number (up to 32-bit integers, float32/64), boolean or nil; FALLBACK for anything else. */
  private scalar(): unknown {
    const b = this.bytes;
    const p = this.pos;
    const t = b[p];
    if (t === undefined) return FALLBACK;
    if (t <= 0x7f) {
      this.pos = p + 1;
      return t;
    }
    if (t >= 0xe0) {
      this.pos = p + 1;
      return t - 0x100;
    }
    if (t >= 0xa0 && t <= 0xbf) return this.str(p + 1, t & 0x1f);
    switch (t) {
      case 0xc0:
        this.pos = p + 1;
        return null;
      case 0xc2:
        this.pos = p + 1;
        return false;
      case 0xc3:
        this.pos = p + 1;
        return true;
      case 0xcc:
        if (p + 2 > this.end) return FALLBACK;
        this.pos = p + 2;
        return b[p + 1];
      case 0xcd:
        if (p + 3 > this.end) return FALLBACK;
        this.pos = p + 3;
        return ((b[p + 1] as number) << 8) | (b[p + 2] as number);
      case 0xce:
        if (p + 5 > this.end) return FALLBACK;
        this.pos = p + 5;
        return this.view(p + 1, 4).getUint32(0);
      case 0xcf: {
        // as @msgpack/msgpack without useBigInt64: high × 2³² + low, as a number
        if (p + 9 > this.end) return FALLBACK;
        this.pos = p + 9;
        const v = this.view(p + 1, 8);
        return v.getUint32(0) * 0x1_0000_0000 + v.getUint32(4);
      }
      case 0xd3: {
        if (p + 9 > this.end) return FALLBACK;
        this.pos = p + 9;
        const v = this.view(p + 1, 8);
        return v.getInt32(0) * 0x1_0000_0000 + v.getUint32(4);
      }
      case 0xd0:
        if (p + 2 > this.end) return FALLBACK;
        this.pos = p + 2;
        return ((b[p + 1] as number) << 24) >> 24;
      case 0xd1:
        if (p + 3 > this.end) return FALLBACK;
        this.pos = p + 3;
        return this.view(p + 1, 2).getInt16(0);
      case 0xd2:
        if (p + 5 > this.end) return FALLBACK;
        this.pos = p + 5;
        return this.view(p + 1, 4).getInt32(0);
      case 0xca:
        if (p + 5 > this.end) return FALLBACK;
        this.pos = p + 5;
        return this.view(p + 1, 4).getFloat32(0);
      case 0xcb:
        if (p + 9 > this.end) return FALLBACK;
        this.pos = p + 9;
        return this.view(p + 1, 8).getFloat64(0);
      case 0xd9:
        if (p + 2 > this.end) return FALLBACK;
        return this.str(p + 2, b[p + 1] as number);
      case 0xda:
        if (p + 3 > this.end) return FALLBACK;
        return this.str(p + 3, ((b[p + 1] as number) << 8) | (b[p + 2] as number));
      default:
        return FALLBACK;
    }
  }

  private str(start: number, len: number): string | typeof FALLBACK {
    const b = this.bytes;
    const end = start + len;
    if (end > this.end) return FALLBACK;
    this.pos = end;
    let ascii = true;
    for (let i = start; i < end; i++) {
      if ((b[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      // Short strings (IDs) char by char: no view and no argument list to allocate.
      if (len <= 16) return latin1(b, start, end);
      return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
    }
    const text = utf8.decode(b.subarray(start, end));
    // Invalid UTF-8 is replaced differently by the two decoders: leave it to the general one.
    return clean(text) ? text : FALLBACK;
  }

  /** The `n` bytes at `at`, copied into a scratch DataView (no allocation per number). */
  private view(at: number, n: number): DataView {
    for (let i = 0; i < n; i++) scratchBytes[i] = this.bytes[at + i] as number;
    return scratch;
  }
}

const UNWANTED = -1;
const NOT_ASCII = -2;
const PROTO = new TextEncoder().encode('__proto__');

/**
 * Which of `names` the key `b[at, at + len)` is: its index, {@link UNWANTED}, or {@link NOT_ASCII} for a
 * key the full decode must judge: one with a byte ≥ 0x80 (it replaces invalid UTF-8 its own way) or
 * `__proto__` (it rejects the body).
 */
function wanted(b: Uint8Array, at: number, len: number, names: Uint8Array[]): number {
  for (let i = at; i < at + len; i++) if ((b[i] as number) >= 0x80) return NOT_ASCII;
  if (len === PROTO.length && sameBytes(PROTO, b, at, at + len)) return NOT_ASCII;
  for (let k = 0; k < names.length; k++) {
    const name = names[k] as Uint8Array;
    if (name.length === len && sameBytes(name, b, at, at + len)) return k;
  }
  return UNWANTED;
}

function sameBytes(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (a[i - start] !== b[i]) return false;
  return true;
}

/**
 * False when the decoded text holds U+FFFD: an invalid sequence (or an encoded U+FFFD) is left to the
 * general decoder, which replaces invalid bytes its own way.
 */
function clean(text: string): boolean {
  return !text.includes('\uFFFD');
}

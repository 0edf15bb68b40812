/**
 * The msgpack body decoder. Bodies are nearly always a flat map of short string keys to scalars
 * (`{id, ts, amount, type}`); for those a dedicated pass builds the object directly — no per-call
 * DataView/Uint8Array setup, map keys from a small cache — and everything else (nested maps, arrays,
 * binary, 64-bit integers, extension types, malformed or trailing bytes) goes to `@msgpack/msgpack`'s
 * general decoder, which also produces the errors. Both give the same value for every input
 * (test/msgpackBody.test.ts compares them on random and damaged bodies).
 */
import { Decoder } from '@msgpack/msgpack';

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

  decode(bytes: Uint8Array): unknown {
    const fast = this.flatMap(bytes);
    return fast === FALLBACK ? this.general.decode(bytes) : fast;
  }

  private flatMap(bytes: Uint8Array): Record<string, unknown> | typeof FALLBACK {
    this.bytes = bytes;
    const first = bytes[0];
    let n: number;
    if (first === undefined) return FALLBACK;
    if (first >= 0x80 && first <= 0x8f) {
      n = first & 0x0f;
      this.pos = 1;
    } else if (first === 0xde && bytes.length >= 3) {
      n = ((bytes[1] as number) << 8) | (bytes[2] as number);
      this.pos = 3;
    } else return FALLBACK;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.key();
      if (key === FALLBACK) return FALLBACK;
      const value = this.scalar();
      if (value === FALLBACK) return FALLBACK;
      out[key] = value;
    }
    return this.pos === bytes.length ? out : FALLBACK;
  }

  /** A fixstr/str8 map key (not `__proto__`), or FALLBACK. */
  private key(): string | typeof FALLBACK {
    const b = this.bytes;
    const t = b[this.pos];
    let len: number;
    let start: number;
    if (t === undefined) return FALLBACK;
    if (t >= 0xa0 && t <= 0xbf) {
      len = t & 0x1f;
      start = this.pos + 1;
    } else if (t === 0xd9 && this.pos + 1 < b.length) {
      len = b[this.pos + 1] as number;
      start = this.pos + 2;
    } else return FALLBACK;
    const end = start + len;
    if (end > b.length) return FALLBACK;
    this.pos = end;
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
    const need = (n: number) => p + 1 + n <= b.length;
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
        if (!need(1)) return FALLBACK;
        this.pos = p + 2;
        return b[p + 1];
      case 0xcd:
        if (!need(2)) return FALLBACK;
        this.pos = p + 3;
        return ((b[p + 1] as number) << 8) | (b[p + 2] as number);
      case 0xce:
        if (!need(4)) return FALLBACK;
        this.pos = p + 5;
        return this.view(p + 1, 4).getUint32(0);
      case 0xcf: {
        // as @msgpack/msgpack without useBigInt64: high × 2³² + low, as a number
        if (!need(8)) return FALLBACK;
        this.pos = p + 9;
        const v = this.view(p + 1, 8);
        return v.getUint32(0) * 0x1_0000_0000 + v.getUint32(4);
      }
      case 0xd3: {
        if (!need(8)) return FALLBACK;
        this.pos = p + 9;
        const v = this.view(p + 1, 8);
        return v.getInt32(0) * 0x1_0000_0000 + v.getUint32(4);
      }
      case 0xd0:
        if (!need(1)) return FALLBACK;
        this.pos = p + 2;
        return ((b[p + 1] as number) << 24) >> 24;
      case 0xd1:
        if (!need(2)) return FALLBACK;
        this.pos = p + 3;
        return this.view(p + 1, 2).getInt16(0);
      case 0xd2:
        if (!need(4)) return FALLBACK;
        this.pos = p + 5;
        return this.view(p + 1, 4).getInt32(0);
      case 0xca:
        if (!need(4)) return FALLBACK;
        this.pos = p + 5;
        return this.view(p + 1, 4).getFloat32(0);
      case 0xcb:
        if (!need(8)) return FALLBACK;
        this.pos = p + 9;
        return this.view(p + 1, 8).getFloat64(0);
      case 0xd9:
        if (!need(1)) return FALLBACK;
        return this.str(p + 2, b[p + 1] as number);
      case 0xda:
        if (!need(2)) return FALLBACK;
        return this.str(p + 3, ((b[p + 1] as number) << 8) | (b[p + 2] as number));
      default:
        return FALLBACK;
    }
  }

  private str(start: number, len: number): string | typeof FALLBACK {
    const b = this.bytes;
    const end = start + len;
    if (end > b.length) return FALLBACK;
    this.pos = end;
    let ascii = true;
    for (let i = start; i < end; i++) {
      if ((b[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
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

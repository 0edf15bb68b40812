/**
 * A minimal msgpack writer for the commit op list: an array of arrays of byte strings. Redis' embedded
 * `cmsgpack` predates the `bin` and `str8` types (it rejects them: "Bad data format"), so every string is
 * written in the old raw forms (fixraw, raw16, raw32), which it reads as Lua strings. Being specific also
 * makes it cheaper than a general encoder: one growing buffer, no type dispatch beyond string vs bytes.
 */
import { type ByteString, ByteWriter } from '../util/bytes.js';

export type OpArg = ByteString;

export class OpsWriter extends ByteWriter {
  private readonly encoder = new TextEncoder();

  constructor() {
    super(64 * 1024);
  }

  reset(): void {
    this.pos = 0;
  }

  /** Starts an array whose length is not known yet; `endArray` patches it in. Returns its position. */
  beginArray(): number {
    this.ensure(5);
    const at = this.pos;
    this.buf[at] = 0xdd;
    this.pos += 5;
    return at;
  }

  endArray(at: number, n: number): void {
    this.view.setUint32(at + 1, n);
  }

  /** An array header of `n` elements. */
  array(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x90 | n;
    else if (n < 0x10000) {
      this.buf[this.pos] = 0xdc;
      this.view.setUint16(this.pos + 1, n);
      this.pos += 3;
    } else {
      this.buf[this.pos] = 0xdd;
      this.view.setUint32(this.pos + 1, n);
      this.pos += 5;
    }
  }

  /** msgpack `false` (Lua `false` after `cmsgpack.unpack`: unlike nil it leaves no hole in a table). */
  false(): void {
    this.ensure(1);
    this.buf[this.pos++] = 0xc2;
  }

  /** A string or byte string, as msgpack raw. */
  arg(a: OpArg): void {
    if (typeof a !== 'string') {
      this.ensure(5 + a.length);
      this.header(a.length);
      this.buf.set(a, this.pos);
      this.pos += a.length;
      return;
    }
    const n = a.length;
    this.ensure(5 + n * 6); // UTF-8 takes at most 3 bytes per UTF-16 unit; twice for the non-ASCII path
    // Keys, IDs and numbers are short ASCII: copying char codes beats TextEncoder's per-call cost (~4x, measured).
    const start = this.pos + (n < 32 ? 1 : n < 0x10000 ? 3 : 5);
    const buf = this.buf;
    let i = 0;
    for (; i < n; i++) {
      const c = a.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    if (i === n) {
      this.header(n);
      this.pos += n;
      return;
    }
    const tmp = start + n * 3; // non-ASCII: encode past the worst case, then move into place
    const { written } = this.encoder.encodeInto(a, buf.subarray(tmp));
    this.header(written);
    this.buf.copyWithin(this.pos, tmp, tmp + written);
    this.pos += written;
  }

  private header(len: number): void {
    if (len < 32) this.buf[this.pos++] = 0xa0 | len;
    else if (len < 0x10000) {
      this.buf[this.pos] = 0xda;
      this.view.setUint16(this.pos + 1, len);
      this.pos += 3;
    } else {
      this.buf[this.pos] = 0xdb;
      this.view.setUint32(this.pos + 1, len);
      this.pos += 5;
    }
  }
}

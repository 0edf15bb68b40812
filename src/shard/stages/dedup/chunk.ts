/**
 * One chunk of a dedup checkpoint log (checkpoint.ts): the IDs one commit remembered for one key group.
 *
 *   chunk := count:u32  (seenAt:f64  byteLength:u32  UTF-8 bytes){count}      (all big-endian)
 */
import { ByteWriter, copyBytes } from '../../../util/bytes.js';

/** Writes one chunk; reuses its buffer. */
export class ChunkWriter extends ByteWriter {
  constructor() {
    super(4096);
  }

  reset(count: number): void {
    this.view.setUint32(0, count);
    this.pos = 4;
  }

  /** One ID, `bytes[start, end)`, remembered at `seenAt`. */
  entry(bytes: Uint8Array, start: number, end: number, seenAt: number): void {
    const len = end - start;
    this.ensure(12 + len);
    this.view.setFloat64(this.pos, seenAt);
    this.view.setUint32(this.pos + 8, len);
    copyBytes(bytes, start, end, this.buf, this.pos + 12);
    this.pos += 12 + len;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The IDs of one chunk, in order. Throws on a chunk that is not in the format above. */
export function readChunk(bytes: Uint8Array): Array<{ id: string; seenAt: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0);
  const out: Array<{ id: string; seenAt: number }> = [];
  let pos = 4;
  for (let k = 0; k < count; k++) {
    const seenAt = view.getFloat64(pos);
    const len = view.getUint32(pos + 8);
    const end = pos + 12 + len;
    if (end > bytes.byteLength) throw new Error('dedup checkpoint chunk is truncated');
    out.push({ id: utf8.decode(bytes.subarray(pos + 12, end)), seenAt });
    pos = end;
  }
  if (pos !== bytes.byteLength) throw new Error('dedup checkpoint chunk has trailing bytes');
  return out;
}

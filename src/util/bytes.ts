/**
 * A Redis argument or value: text (sent as its UTF-8 bytes) or exact bytes. Keys travel as text when their
 * bytes are valid UTF-8 (they encode back to the same bytes) and as bytes otherwise.
 */
export type ByteString = string | Uint8Array;

/**
 * A growable byte buffer with a DataView over it: the base of the writers of the batch format
 * (routing/router.ts), the commit op list (shard/opsCodec.ts) and the dedup log
 * (shard/stages/dedup/chunk.ts).
 */
export class ByteWriter {
  protected buf: Uint8Array<ArrayBuffer>;
  protected view: DataView<ArrayBuffer>;
  protected pos: number;

  constructor(size: number, start = 0) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
    this.pos = start;
  }

  /** A copy of what was written (the internal buffer is reused). */
  finish(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.pos);
  }

  /** Makes room for `extra` more bytes, at least doubling the buffer when it grows. */
  protected ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

/** Whether `a[aFrom, aFrom + (end - start))` holds the same bytes as `b[start, end)`. */
export function bytesEqual(a: Uint8Array, aFrom: number, b: Uint8Array, start: number, end: number): boolean {
  for (let i = 0; i < end - start; i++) if (a[aFrom + i] !== b[start + i]) return false;
  return true;
}

/**
 * Copies `src[start, end)` to `dst` at `at`. Short ranges (IDs, keys) are copied byte by byte: a
 * `set(src.subarray(…))` allocates a view per call, which on the hot path was a tenth of a shard's garbage.
 */
export function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void {
  if (end - start > 64) {
    dst.set(src.subarray(start, end), at);
    return;
  }
  for (let i = start; i < end; i++) dst[at + i - start] = src[i] as number;
}

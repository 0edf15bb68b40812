/**
 * Turns the chunks a socket delivers into whole RESP replies, at a cost linear in the reply's size.
 *
 *   chunk ──► reply inside one chunk? ──yes──► handed out as a view of the chunk (no copy)
 *                  │ no (it goes on in the next chunk)
 *                  ▼
 *             its bytes so far are copied ONCE into `acc`, which grows by doubling; each later chunk is
 *             appended and the scan (RespReader.skip) resumes where it stopped → a view of `acc`
 *
 * The connection used to concatenate the unfinished reply with every new chunk: quadratic, 50 MB took
 * ~7 s and 75 MB ~41 s, past the reader's command timeout, so the read was retried forever. Now every
 * byte is copied at most once into `acc` plus once per doubling (≤ 3× the reply in all; see
 * {@link copied}, which the tests check).
 *
 * Bytes are dropped instead of kept for a bulk string longer than {@link limit} (the reader connection
 * sets `source.maxEntryBytes` for stream reads) that has not all arrived: what stays in the reply is the
 * marker `$-<length>\r\n` — a nil to any RESP reader, and an oversized value to the stream-read code
 * (source/streamReply.ts, routing/router.ts) — and its bytes are skipped as they come in. A value that
 * arrived whole within a chunk is kept (it is already in memory); the router still sees its entry's size.
 */
import { BAD, INCOMPLETE, LONG, RespReader } from './respReader.js';

/** Smallest buffer started for an unfinished reply. */
const MIN_ACC = 16 * 1024;
/** Most bytes appended to an unfinished reply before scanning them (bounds what a dropped value costs). */
const SLICE = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export class ReplyAssembler {
  /** Bytes copied between buffers since the start (the cost model above; for tests and diagnostics). */
  copied = 0;
  /** Bulk strings longer than this that have not all arrived are dropped (see above). */
  limit = Number.POSITIVE_INFINITY;
  /** Its array state (an unfinished `skip`) belongs to the reply being assembled. */
  private reader = new RespReader(Buffer.alloc(0));
  /** The unfinished reply's bytes from offset 0 (`accLen` of them), or null when none spans chunks. */
  private acc: Buffer | null = null;
  private accLen = 0;
  /** Where in `reader.buf` the reply not yet handed out begins. */
  private start = 0;
  /** Bytes of input still to drop: the rest of a bulk string that is not kept (and its CRLF). */
  private drop = 0;

  /** Forgets any unfinished reply (a new connection). */
  reset(): void {
    this.acc = null;
    this.accLen = 0;
    this.start = 0;
    this.drop = 0;
    this.reader = new RespReader(Buffer.alloc(0));
  }

  /**
   * Feeds one chunk. For each reply that is now whole, calls `onReply(reader, start)`: the reply is
   * `reader.buf[start, reader.pos)`. The callback returns false to stop (the connection is closing);
   * `BAD` is reported as `onReply(null, start)`.
   */
  push(chunk: Buffer, onReply: (r: RespReader | null, start: number) => boolean): void {
    const r = this.reader;
    let c = chunk;
    while (c.length > 0) {
      if (this.drop > 0) {
        const d = Math.min(this.drop, c.length);
        this.drop -= d;
        c = c.subarray(d);
        continue;
      }
      if (this.acc === null) {
        r.buf = c;
        r.pos = 0;
        this.start = 0;
        c = EMPTY;
      } else {
        // In slices, so that a long value that starts in this chunk is cut before much of it is copied.
        this.append(r, c.subarray(0, SLICE));
        c = c.subarray(SLICE);
      }
      if (!this.scan(r, onReply)) return;
    }
  }

  /** Hands out the replies that are whole in `r.buf`; false when `onReply` said stop. */
  private scan(r: RespReader, onReply: (r: RespReader | null, start: number) => boolean): boolean {
    while (r.pos < r.buf.length) {
      r.limit = this.limit;
      const whole = r.skip();
      if (whole === INCOMPLETE) {
        this.keep(r);
        return true;
      }
      if (whole === LONG) {
        this.cut(r);
        continue;
      }
      const start = this.start;
      this.start = r.pos;
      if (!onReply(whole === BAD ? null : r, start)) return false;
    }
    this.acc = null; // every reply handed out: the next bytes start afresh
    this.accLen = 0;
    return true;
  }

  /** Appends `c` to `acc`, doubling it when full. */
  private append(r: RespReader, c: Buffer): void {
    this.ensure(this.accLen + c.length);
    const acc = this.acc as Buffer;
    c.copy(acc, this.accLen);
    this.copied += c.length;
    this.accLen += c.length;
    r.buf = acc.subarray(0, this.accLen);
  }

  /** Room for `size` bytes in `acc` (which holds the unfinished reply from 0). */
  private ensure(size: number): void {
    const acc = this.acc as Buffer;
    if (size <= acc.length) return;
    const next = Buffer.allocUnsafe(Math.max(size, 2 * acc.length));
    acc.copy(next, 0, 0, this.accLen);
    this.copied += this.accLen;
    this.acc = next;
  }

  /**
   * Moves `reader.buf[start, end)` — the reply not yet handed out, `end` bytes of `reader.buf` in all —
   * to the start of a fresh `acc` (a handed-out reply may be a view of the old one: never written again).
   */
  private restart(r: RespReader, end: number): void {
    const n = end - this.start;
    const acc = Buffer.allocUnsafe(Math.max(MIN_ACC, 2 * n));
    r.buf.copy(acc, 0, this.start, end);
    this.copied += n;
    this.acc = acc;
    this.accLen = n;
    r.pos -= this.start;
    this.start = 0;
    r.buf = acc.subarray(0, n);
  }

  /** The bytes ended inside a reply: keep them for the next chunk. */
  private keep(r: RespReader): void {
    if (this.acc !== null && this.start === 0) return; // already at the start of `acc`
    this.restart(r, r.buf.length);
  }

  /**
   * `skip` stopped at a bulk string longer than the limit: the reply keeps `$-<length>\r\n` in its place,
   * and the bytes of the string (and its CRLF) that have not arrived yet are dropped as they come.
   */
  private cut(r: RespReader): void {
    const at = r.pos;
    this.drop = r.longLength + 2 - (r.buf.length - r.longBody);
    const marker = `$-${r.longLength}\r\n`;
    if (this.acc === null || this.start > 0) this.restart(r, at);
    else this.accLen = at;
    this.ensure(this.accLen + marker.length);
    const acc = this.acc as Buffer;
    this.accLen += acc.write(marker, this.accLen, 'latin1');
    r.buf = acc.subarray(0, this.accLen); // r.pos is at the marker: skip reads it next
  }
}

/**
 * The entries of an XREADGROUP reply, left in the reply's RESP bytes. Parsing a read into objects — a
 * Buffer per ID and field, an array per entry — was most of the main thread's garbage (~1.4 KB per
 * entry, BENCHMARKS.md); the router copies each entry from these bytes into its shard's batch instead.
 *
 *   reply  := *1 ( *2 $stream *N entry* )  |  *-1           (nil: nothing to read)
 *   entry  := *2 $id ( *F $field… )  |  *2 $id *-1          (nil fields: deleted since it was read)
 *
 * A field may also be `$-<length>` (no bytes follow): a value longer than `source.maxEntryBytes` that the
 * reader connection dropped as it arrived (redis/replyAssembler.ts); the router dead-letters its entry.
 */
import { ReplyError, RespReader } from '../redis/respConnection.js';

export class StreamReply {
  /** Entries with fields (deleted ones are in {@link deleted} only). */
  readonly count: number;
  /** Offset of each such entry's ID (its `$` header) in {@link bytes}. */
  readonly starts: Int32Array;
  /** IDs of pending entries whose data was deleted from the stream (copies). */
  readonly deleted: Buffer[] = [];
  /** ID of the last entry of the reply, deleted or not; null for an empty reply. */
  readonly lastId: string | null = null;

  /**
   * Walks the reply once (headers only), recording where each entry starts.
   * @throws ReplyError for an error reply; Error when the bytes are not an XREADGROUP reply
   */
  constructor(readonly bytes: Buffer) {
    const r = new RespReader(bytes);
    if (bytes[0] === 0x2d) throw r.parse() as ReplyError;
    const streams = arrayHeader(r);
    if (streams <= 0) {
      this.count = 0;
      this.starts = new Int32Array(0);
      return;
    }
    if (streams !== 1 || arrayHeader(r) !== 2) throw malformed('one stream expected');
    skipBulk(r); // the stream's name
    const n = arrayHeader(r);
    const starts = new Int32Array(Math.max(0, n));
    let count = 0;
    let lastId = -1;
    for (let i = 0; i < n; i++) {
      if (arrayHeader(r) !== 2) throw malformed('entry is not [id, fields]');
      const at = r.pos;
      lastId = at;
      skipBulk(r);
      const fields = arrayHeader(r);
      if (fields < 0) {
        this.deleted.push(Buffer.from(bulkAt(bytes, at)));
        continue;
      }
      for (let f = 0; f < fields; f++) skipBulk(r, true);
      starts[count++] = at;
    }
    if (r.pos !== bytes.length) throw malformed('bytes after the entries');
    this.count = count;
    this.starts = starts;
    if (lastId >= 0) this.lastId = bulkAt(bytes, lastId).toString('latin1');
  }

  /** The ID of entry `i` (of those with fields). */
  idAt(i: number): string {
    return bulkAt(this.bytes, this.starts[i] as number).toString('latin1');
  }
}

/** An empty read. */
export const NO_ENTRIES = new StreamReply(Buffer.from('*-1\r\n'));

function malformed(why: string): Error {
  return new Error(`malformed XREADGROUP reply: ${why}`);
}

/** Reads a `*N` header; -1 for a nil array. */
function arrayHeader(r: RespReader): number {
  if (r.buf[r.pos] !== 0x2a) throw malformed(`array expected at byte ${r.pos}`);
  r.pos++;
  const n = r.int();
  if (n === null) throw malformed('truncated');
  return n;
}

/** Steps over a bulk string; with `dropped`, a `$-<length>` (a value the reader did not keep) too. */
function skipBulk(r: RespReader, dropped = false): void {
  if (r.buf[r.pos] !== 0x24) throw malformed(`bulk string expected at byte ${r.pos}`);
  r.pos++;
  const n = r.int();
  if (n === null || (n < 0 && !dropped) || r.pos + n + 2 > r.buf.length) throw malformed('truncated');
  if (n >= 0) r.pos += n + 2;
}

/** The payload of the bulk string whose `$` is at `at` (a view). */
function bulkAt(bytes: Buffer, at: number): Buffer {
  const r = new RespReader(bytes, at + 1);
  const n = r.int() as number;
  return bytes.subarray(r.pos, r.pos + n);
}

/**
 * Routing on the main thread: find the key field, hash its bytes, map to key group and shard, and copy
 * the entry into that shard's open batch — straight from the RESP bytes of the read (source/streamReply.ts).
 * No body decode, no string for the key, no object per entry: the cost per entry is reading a few RESP
 * headers, a field-name comparison, an FNV over the key bytes and the copy.
 */
import { RespReader } from '../redis/respConnection.js';
import type { StreamReply } from '../source/streamReply.js';
import { BatchWriter, MAX_KEY_COPY, NO_KEY, OVERSIZED, WRONG_PARTITION } from './batchCodec.js';
import { fnv1a, keyGroupOf, shardOfKeyGroup } from './hash.js';

/**
 * The entries collected for one shard since its last flush, already in the batch format (batchCodec.ts):
 * each routed entry is copied into this buffer at once, so that nothing of the read — the reply's Buffers
 * and entry objects — outlives it. (Holding the entries until the flush let them survive young-generation
 * GCs and pile up in the old generation: measured 375 MB of main-thread heap over a 600k-entry drain.)
 */
export class OpenBatch extends BatchWriter {
  /** Wall time the first entry arrived (for `commit.maxDelay`). */
  since = 0;

  override take(): { count: number; buf: ArrayBuffer } {
    this.since = 0;
    return super.take();
  }
}

export class Router {
  private readonly keyName: Buffer;
  /** shardOf[keyGroup], precomputed; {@link OUTSIDE} for a key group of another partition. */
  private readonly shardOf: Uint16Array;
  /** The key group a keyless entry goes with: the empty key's, or the partition's first when that is not ours. */
  private readonly keylessGroup: number;
  /** Field ranges of the entry being routed (grown for entries with more fields). */
  private starts = new Int32Array(16);
  private lens = new Int32Array(16);
  private readonly head = { keyGroup: 0, keyField: NO_KEY, deliveries: 1, flags: 0 };
  private readonly resp = new RespReader(Buffer.alloc(0));

  constructor(
    keyField: string,
    private readonly keyGroups: number,
    shards: number,
    /** `source.maxEntryBytes`: a larger entry (names and values summed) is not copied into a batch. */
    private readonly maxEntryBytes = Number.POSITIVE_INFINITY,
    /** The partition's key groups `[from, to)`: an entry of another key group is flagged WRONG_PARTITION. */
    range: { from: number; to: number } = { from: 0, to: keyGroups },
  ) {
    this.keyName = Buffer.from(keyField, 'utf8');
    this.shardOf = new Uint16Array(keyGroups).fill(OUTSIDE);
    for (let g = range.from; g < range.to; g++)
      this.shardOf[g] = shardOfKeyGroup(g, keyGroups, shards, range.from, range.to);
    const empty = keyGroupOf(fnv1a(EMPTY), keyGroups);
    this.keylessGroup = this.shardOf[empty] === OUTSIDE ? range.from : empty;
  }

  /**
   * Appends each entry of the read to its shard's open batch. `deliveries[i]` is entry i's delivery count
   * when known (a re-read of pending entries); otherwise 1. An entry over `maxEntryBytes` goes as a
   * header only, flagged {@link OVERSIZED}, with its key when the key's bytes are here and short.
   */
  route(reply: StreamReply, batches: OpenBatch[], now: number, deliveries: number[] | null = null): void {
    const bytes = reply.bytes;
    const r = this.resp;
    r.buf = bytes;
    const name = this.keyName;
    const head = this.head;
    for (let e = 0; e < reply.count; e++) {
      // $id, then *F and F × $field (StreamReply checked the shape)
      r.pos = (reply.starts[e] as number) + 1;
      const idLen = r.int() as number;
      const idStart = r.pos;
      r.pos = idStart + idLen + 3; // CRLF, '*'
      const n = r.int() as number;
      if (n > this.starts.length) {
        this.starts = new Int32Array(n);
        this.lens = new Int32Array(n);
      }
      const { starts, lens } = this;
      let keyField = NO_KEY;
      let size = 0;
      let cut = false;
      for (let i = 0; i < n; i++) {
        r.pos++; // '$'
        const len = r.int() as number;
        starts[i] = r.pos;
        if (len < 0) {
          // `$-<length>`: a value the reader connection did not keep (longer than maxEntryBytes)
          lens[i] = -1;
          size += -len;
          cut = true;
          continue;
        }
        lens[i] = len;
        size += len;
        r.pos += len + 2;
        if (
          keyField === NO_KEY &&
          (i & 1) === 0 &&
          len === name.length &&
          sameAt(bytes, starts[i] as number, name)
        )
          keyField = i + 1;
      }
      if (keyField >= n || (lens[keyField] as number) < 0) keyField = NO_KEY; // no value, or not kept
      // A missing key hashes as the empty key: it still goes to one fixed shard, which dead-letters it.
      let kg =
        keyField === NO_KEY || lens[keyField] === 0 // an empty key is dead-lettered as missing, too
          ? this.keylessGroup
          : keyGroupOf(
              fnv1a(
                bytes,
                starts[keyField] as number,
                (starts[keyField] as number) + (lens[keyField] as number),
              ),
              this.keyGroups,
            );
      let flags = 0;
      let shard = this.shardOf[kg] as number;
      if (shard === OUTSIDE) {
        // Another partition's key: its shard 0 dead-letters it (under a key group of ours, so that
        // nothing in the worker indexes state by a foreign key group).
        flags = WRONG_PARTITION;
        kg = this.keylessGroup;
        shard = this.shardOf[kg] as number;
      }
      const b = batches[shard] as OpenBatch;
      if (b.size === 0) b.since = now;
      head.keyGroup = kg;
      head.deliveries = deliveries === null ? 1 : (deliveries[e] as number);
      if (!cut && size <= this.maxEntryBytes) {
        head.keyField = keyField;
        head.flags = flags;
        b.add(bytes, idStart, idLen, n, starts, lens, head);
        continue;
      }
      // Too large: only the key travels (as fields 0 and 1), so the dead letter shows it.
      head.flags = OVERSIZED | flags;
      if (keyField !== NO_KEY && (lens[keyField] as number) <= MAX_KEY_COPY) {
        starts[0] = starts[keyField - 1] as number;
        lens[0] = name.length;
        starts[1] = starts[keyField] as number;
        lens[1] = lens[keyField] as number;
        head.keyField = 1;
        b.add(bytes, idStart, idLen, 2, starts, lens, head, size);
      } else {
        head.keyField = NO_KEY;
        b.add(bytes, idStart, idLen, 0, starts, lens, head, size);
      }
    }
  }
}

function sameAt(bytes: Uint8Array, at: number, name: Uint8Array): boolean {
  for (let i = 0; i < name.length; i++) if (bytes[at + i] !== name[i]) return false;
  return true;
}

const EMPTY = Buffer.alloc(0);
/** shardOf[] of a key group outside the partition (no shard index reaches it: shards ≤ keyGroups ≤ 65,536). */
const OUTSIDE = 0xffff;

/**
 * Routing on the main thread: find the key field, hash its bytes, map to key group and shard, and copy
 * the entry into that shard's open batch — straight from the RESP bytes of the read (source/streamReply.ts).
 * No body decode, no string for the key, no object per entry: the cost per entry is reading a few RESP
 * headers, a field-name comparison, an FNV over the key bytes and the copy.
 */
import { RespReader } from '../redis/respConnection.js';
import type { StreamReply } from '../source/streamReply.js';
import { ByteWriter, copyBytes } from '../util/bytes.js';
import { MAX_DELIVERIES, NO_KEY } from './batchCodec.js';
import { fnv1a, keyGroupOf } from './hash.js';

/**
 * The entries collected for one shard since its last flush, already in the batch format (batchCodec.ts):
 * each routed entry is copied into this buffer at once, so that nothing of the read — the reply's Buffers
 * and entry objects — outlives it. (Holding the entries until the flush let them survive young-generation
 * GCs and pile up in the old generation: measured 375 MB of main-thread heap over a 600k-entry drain.)
 */
export class OpenBatch extends ByteWriter {
  private count = 0;
  /** Wall time the first entry arrived (for `commit.maxDelay`). */
  since = 0;

  constructor() {
    super(64 * 1024, 4);
  }

  get size(): number {
    return this.count;
  }

  /**
   * Appends one entry (see batchCodec.ts for the layout) whose ID is `src[idStart, idStart + idLen)` and
   * whose `n` fields are `src[starts[i], starts[i] + lens[i])`.
   */
  add(
    src: Uint8Array,
    idStart: number,
    idLen: number,
    n: number,
    starts: Int32Array,
    lens: Int32Array,
    head: { keyGroup: number; keyField: number; deliveries: number },
  ): void {
    let size = 10 + idLen;
    for (let i = 0; i < n; i++) size += 4 + (lens[i] as number);
    this.ensure(size);
    const v = this.view;
    let o = this.pos;
    v.setUint16(o, head.keyGroup, true);
    v.setUint16(o + 2, head.keyField, true);
    v.setUint16(o + 4, head.deliveries, true);
    v.setUint16(o + 6, idLen, true);
    copyBytes(src, idStart, idStart + idLen, this.buf, o + 8);
    o += 8 + idLen;
    v.setUint16(o, n, true);
    o += 2;
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
    this.since = 0;
    return { count, buf };
  }
}

export class Router {
  private readonly keyName: Buffer;
  /** shardOf[keyGroup], precomputed. */
  private readonly shardOf: Uint16Array;
  /** Field ranges of the entry being routed (grown for entries with more fields). */
  private starts = new Int32Array(16);
  private lens = new Int32Array(16);
  private readonly head = { keyGroup: 0, keyField: NO_KEY, deliveries: 1 };
  private readonly resp = new RespReader(Buffer.alloc(0));

  constructor(
    keyField: string,
    private readonly keyGroups: number,
    shards: number,
  ) {
    this.keyName = Buffer.from(keyField, 'utf8');
    this.shardOf = new Uint16Array(keyGroups);
    for (let g = 0; g < keyGroups; g++) this.shardOf[g] = Math.floor((g * shards) / keyGroups);
  }

  /**
   * Appends each entry of the read to its shard's open batch. `deliveries[i]` is entry i's delivery count
   * when known (a re-read of pending entries); otherwise 1.
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
      for (let i = 0; i < n; i++) {
        r.pos++; // '$'
        const len = r.int() as number;
        starts[i] = r.pos;
        lens[i] = len;
        r.pos += len + 2;
        if (
          keyField === NO_KEY &&
          (i & 1) === 0 &&
          len === name.length &&
          sameAt(bytes, starts[i] as number, name)
        )
          keyField = i + 1;
      }
      if (keyField >= n) keyField = NO_KEY; // a name without a value
      // A missing key hashes as the empty key: it still goes to one fixed shard, which dead-letters it.
      const kg =
        keyField === NO_KEY
          ? keyGroupOf(fnv1a(EMPTY), this.keyGroups)
          : keyGroupOf(
              fnv1a(
                bytes,
                starts[keyField] as number,
                (starts[keyField] as number) + (lens[keyField] as number),
              ),
              this.keyGroups,
            );
      const b = batches[this.shardOf[kg] as number] as OpenBatch;
      if (b.size === 0) b.since = now;
      head.keyGroup = kg;
      head.keyField = keyField;
      head.deliveries = deliveries === null ? 1 : Math.min(MAX_DELIVERIES, deliveries[e] as number);
      b.add(bytes, idStart, idLen, n, starts, lens, head);
    }
  }
}

function sameAt(bytes: Uint8Array, at: number, name: Uint8Array): boolean {
  for (let i = 0; i < name.length; i++) if (bytes[at + i] !== name[i]) return false;
  return true;
}

const EMPTY = Buffer.alloc(0);

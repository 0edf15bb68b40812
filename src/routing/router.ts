/**
 * Routing on the main thread: find the key field, hash its bytes, map to key group and shard, and copy
 * the entry into that shard's open batch. No body decode, no string for the key: the cost per entry is a
 * field-name comparison and an FNV over the key bytes.
 */
import { ByteWriter } from '../util/bytes.js';
import { entrySize, MAX_DELIVERIES, NO_KEY, type RawEntry, writeEntry } from './batchCodec.js';
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

  /** Appends one entry (see batchCodec.ts for the layout). */
  add(e: RawEntry, keyGroup: number, keyField: number, deliveries: number): void {
    this.ensure(entrySize(e));
    this.pos = writeEntry(this.view, this.buf, this.pos, e, keyGroup, keyField, deliveries);
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
   * Appends each entry to its shard's open batch. `deliveries[i]` is entry i's delivery count when known
   * (a re-read of pending entries); otherwise 1.
   */
  route(entries: RawEntry[], batches: OpenBatch[], now: number, deliveries: number[] | null = null): void {
    const name = this.keyName;
    for (let n = 0; n < entries.length; n++) {
      const e = entries[n] as RawEntry;
      const f = e.fields;
      let keyField = NO_KEY;
      for (let i = 0; i + 1 < f.length; i += 2) {
        if ((f[i] as Buffer).equals(name)) {
          keyField = i + 1;
          break;
        }
      }
      // A missing key hashes as the empty key: it still goes to one fixed shard, which dead-letters it.
      const key = keyField === NO_KEY ? EMPTY : (f[keyField] as Buffer);
      const kg = keyGroupOf(fnv1a(key), this.keyGroups);
      const b = batches[this.shardOf[kg] as number] as OpenBatch;
      if (b.size === 0) b.since = now;
      b.add(e, kg, keyField, deliveries === null ? 1 : Math.min(MAX_DELIVERIES, deliveries[n] as number));
    }
  }
}

const EMPTY = Buffer.alloc(0);

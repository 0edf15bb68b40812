/**
 * Routing on the main thread: find the key field, hash its bytes, map to key group and shard, and append
 * the entry to that shard's open batch. No body decode, no string for the key: the cost per entry is a
 * field-name comparison and an FNV over the key bytes.
 */
import { entrySize, MAX_DELIVERIES, NO_KEY, packBatch, type RawEntry } from './batchCodec.js';
import { fnv1a, keyGroupOf } from './hash.js';

/** The entries collected for one shard since its last flush. */
export class OpenBatch {
  entries: RawEntry[] = [];
  keyGroups: number[] = [];
  keyFields: number[] = [];
  deliveries: number[] = [];
  bytes = 4;
  /** Wall time the first entry arrived (for `commit.maxDelay`). */
  since = 0;

  get size(): number {
    return this.entries.length;
  }

  /** Packs and resets; returns the entry count and the transferable buffer. */
  take(): { count: number; buf: ArrayBuffer } {
    const buf = packBatch(
      this.entries,
      Uint16Array.from(this.keyGroups),
      Uint16Array.from(this.keyFields),
      this.bytes,
      Uint16Array.from(this.deliveries),
    );
    const count = this.entries.length;
    this.entries = [];
    this.keyGroups = [];
    this.keyFields = [];
    this.deliveries = [];
    this.bytes = 4;
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
      if (b.entries.length === 0) b.since = now;
      b.entries.push(e);
      b.keyGroups.push(kg);
      b.keyFields.push(keyField);
      b.deliveries.push(deliveries === null ? 1 : Math.min(MAX_DELIVERIES, deliveries[n] as number));
      b.bytes += entrySize(e);
    }
  }
}

const EMPTY = Buffer.alloc(0);

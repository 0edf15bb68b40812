/**
 * The dedup stage as it was before its IDs moved into typed arrays (commit a64e80b): a `Map` of ID
 * strings to slots. Kept as the reference the typed-array stage is compared with (test/dedupStage.test.ts):
 * same decisions, same checkpoint chunks, same trims.
 */
import type { DedupConfig } from '../../src/config/schema.js';
import type { DedupDelta, DedupLog } from '../../src/shard/stages/dedup/checkpoint.js';
import { readChunk } from '../../src/shard/stages/dedup/chunk.js';
import { ByteWriter } from '../../src/util/bytes.js';

const INITIAL_SLOTS = 1024;

export class MapDedupStage {
  private readonly seen = new Map<string, number>();
  private ids: string[] = [];
  private seenAt = new Float64Array(INITIAL_SLOTS);
  private keyGroup = new Uint16Array(INITIAL_SLOTS);
  /** Seq of the slot at index 0. */
  private base = 1;
  /** Index of the oldest slot that may still be live. */
  private head = 0;
  /** Seq of the first slot remembered since the last drain (not yet in the log). */
  private freshFrom = 1;
  /** Per key group with chunks in its log: the seq of each chunk's last slot, oldest chunk first. */
  private readonly logs = new Map<number, number[]>();
  private readonly ttl: number;
  private readonly maxEntries: number;
  private readonly writer = new ChunkWriter();

  constructor(cfg: Pick<DedupConfig, 'ttl' | 'maxEntries'>) {
    this.ttl = cfg.ttl;
    this.maxEntries = cfg.maxEntries;
  }

  get size(): number {
    return this.seen.size;
  }

  /** Seq the next remembered slot gets. */
  private get tail(): number {
    return this.base + this.ids.length;
  }

  /**
   * Restores the logs of the shard's key groups. IDs already past their TTL at `streamTime` are skipped;
   * the rest are remembered in stream-time order (IDs stamped with the same stream time in log order), and
   * then the oldest are forgotten down to `maxEntries`, as an uninterrupted shard would have. Does not
   * append anything to the logs.
   */
  restore(logs: DedupLog[], streamTime: number): void {
    const entries: Array<{ id: string; seenAt: number; keyGroup: number; chunkSeqs: number[]; at: number }> =
      [];
    for (const log of logs) {
      const chunkSeqs: number[] = [];
      this.logs.set(log.keyGroup, chunkSeqs);
      log.chunks.forEach((bytes, at) => {
        chunkSeqs.push(0); // a chunk of expired IDs only keeps 0 and is dropped at the first drain
        for (const e of readChunk(bytes)) entries.push({ ...e, keyGroup: log.keyGroup, chunkSeqs, at });
      });
    }
    entries.sort((a, b) => a.seenAt - b.seenAt); // stable: equal stream times keep log order
    for (const e of entries) {
      if (streamTime - e.seenAt >= this.ttl) continue;
      e.chunkSeqs[e.at] = this.remember(e.id, e.keyGroup, e.seenAt); // ascending: ends at the chunk's last
    }
    while (this.seen.size > this.maxEntries) this.forgetOldest();
    this.freshFrom = this.tail;
  }

  /** True when the event is new (and remembers it); false for a duplicate within the TTL. */
  admit(id: string, keyGroup: number, streamTime: number): boolean {
    if (this.isDuplicate(id, streamTime)) return false;
    this.record(id, keyGroup, streamTime);
    return true;
  }

  /** True for an ID seen within the TTL. Changes nothing (a stage may still fail after it; see Shard). */
  isDuplicate(id: string, streamTime: number): boolean {
    const seq = this.seen.get(id);
    return seq !== undefined && streamTime - (this.seenAt[seq - this.base] as number) < this.ttl;
  }

  /** Remembers an admitted ID: new, or expired and now re-stamped in a new slot at the tail. */
  record(id: string, keyGroup: number, streamTime: number): void {
    this.remember(id, keyGroup, streamTime);
    while (this.seen.size > this.maxEntries) this.forgetOldest();
  }

  private remember(id: string, keyGroup: number, seenAt: number): number {
    const i = this.ids.length;
    if (i === this.seenAt.length) this.grow();
    const seq = this.base + i;
    this.ids.push(id);
    this.seenAt[i] = seenAt;
    this.keyGroup[i] = keyGroup;
    this.seen.set(id, seq);
    return seq;
  }

  private grow(): void {
    const seenAt = new Float64Array(this.seenAt.length * 2);
    seenAt.set(this.seenAt);
    this.seenAt = seenAt;
    const keyGroup = new Uint16Array(this.keyGroup.length * 2);
    keyGroup.set(this.keyGroup);
    this.keyGroup = keyGroup;
  }

  /** True when the slot at index `i` is the live one of its ID. */
  private live(i: number): boolean {
    return this.seen.get(this.ids[i] as string) === this.base + i;
  }

  /** Index of the oldest live slot (skipping stale ones), or -1. */
  private peek(): number {
    while (this.head < this.ids.length) {
      if (this.live(this.head)) return this.head;
      this.head++;
    }
    return -1;
  }

  private forgetOldest(): void {
    const i = this.peek();
    if (i < 0) return;
    this.seen.delete(this.ids[i] as string);
    this.head++;
  }

  /** Drops the consumed front of the queue once it is most of it (amortised O(1) per ID). */
  private compact(): void {
    const h = this.head;
    if (h < 4096 || h * 2 < this.ids.length) return;
    this.ids = this.ids.slice(h);
    this.seenAt.copyWithin(0, h, h + this.ids.length);
    this.keyGroup.copyWithin(0, h, h + this.ids.length);
    this.base += h;
    this.head = 0;
  }

  /**
   * Forgets IDs past their TTL at `streamTime` and returns the checkpoint changes since the last call:
   * the chunks to append, and how many fully forgotten chunks to drop per key group.
   */
  drain(streamTime: number): DedupDelta {
    const expireUpTo = streamTime - this.ttl;
    for (let i = this.peek(); i >= 0 && (this.seenAt[i] as number) <= expireUpTo; i = this.peek()) {
      this.seen.delete(this.ids[i] as string);
      this.head++;
    }
    const appends = this.appendFresh();
    const oldest = this.peek();
    const frontier = oldest < 0 ? this.tail : this.base + oldest; // every slot before it is forgotten
    const trims: DedupDelta['trims'] = [];
    for (const [keyGroup, seqs] of this.logs) {
      let n = 0;
      while (n < seqs.length && (seqs[n] as number) < frontier) n++;
      if (n === 0) continue;
      trims.push({ keyGroup, count: n });
      if (n === seqs.length) this.logs.delete(keyGroup);
      else seqs.splice(0, n);
    }
    this.compact();
    return { appends, trims };
  }

  /** One chunk per key group of the live IDs remembered since the last drain. */
  private appendFresh(): DedupDelta['appends'] {
    const byGroup = new Map<number, number[]>();
    const from = Math.max(this.freshFrom, this.base + this.head) - this.base;
    for (let i = from; i < this.ids.length; i++) {
      if (!this.live(i)) continue; // forgotten again already (maxEntries below a batch's size)
      const g = this.keyGroup[i] as number;
      const slots = byGroup.get(g);
      if (slots === undefined) byGroup.set(g, [i]);
      else slots.push(i);
    }
    this.freshFrom = this.tail;
    const appends: DedupDelta['appends'] = [];
    for (const [keyGroup, slots] of byGroup) {
      const w = this.writer;
      w.reset(slots.length);
      for (const i of slots) w.entry(this.ids[i] as string, this.seenAt[i] as number);
      appends.push({ keyGroup, chunk: w.finish() });
      let seqs = this.logs.get(keyGroup);
      if (seqs === undefined) {
        seqs = [];
        this.logs.set(keyGroup, seqs);
      }
      seqs.push(this.base + (slots[slots.length - 1] as number));
    }
    return appends;
  }
}

/** Writes one chunk; reuses its buffer. */
class ChunkWriter extends ByteWriter {
  private readonly encoder = new TextEncoder();

  constructor() {
    super(4096);
  }

  reset(count: number): void {
    this.view.setUint32(0, count);
    this.pos = 4;
  }

  entry(id: string, seenAt: number): void {
    const n = id.length;
    this.ensure(12 + n * 3);
    this.view.setFloat64(this.pos, seenAt);
    const start = this.pos + 12;
    let i = 0;
    for (; i < n; i++) {
      const c = id.charCodeAt(i);
      if (c >= 0x80) break;
      this.buf[start + i] = c;
    }
    const len = i === n ? n : this.encoder.encodeInto(id, this.buf.subarray(start)).written;
    this.view.setUint32(this.pos + 8, len);
    this.pos = start + len;
  }
}

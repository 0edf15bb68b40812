/**
 * Dedup by event ID, with a TTL in *stream time* (not wall time) so that a replay after a crash makes the
 * same decisions as the first run. An ID is stamped with the shard's stream time (monotone) when
 * remembered, so remembering order is also expiry order. Memory is one Map entry per ID plus a queue of
 * slots in remembering order, kept in typed arrays (56–72 bytes per ID besides its string, measured):
 *
 *   seen:   Map id → seq of its slot                   O(1) lookup
 *   queue:  ids[]      [ id₁   id₂   id₃  … ]          slot of seq s is at index s - base;
 *           seenAt[]   [ t₁    t₂    t₃   … ]          head → oldest live slot; expiring and enforcing
 *           keyGroup[] [ g₁    g₂    g₃   … ]          maxEntries pop from the head, O(1) amortised
 *
 * A re-remembered ID (seen again after its TTL) gets a new slot; its old one is then stale and skipped.
 *
 * **Checkpoint: an append-only log per key group** (`<ns>:dl:<keyGroup>`, a Redis list). Each commit
 * appends one chunk per key group with the IDs remembered in its batch (`RPUSH`), and drops the chunks at
 * the head of the log whose IDs have all been forgotten (`LPOP n`): remembering order is forgetting order,
 * so the log is a FIFO like the queue. Nothing is written per forgotten ID, and Redis stores an ID as ~30
 * bytes of a list element instead of a sorted-set member with its score (the `ZADD`/`ZREM` per ID this
 * replaced cost Redis ~5 µs per event; see BENCHMARKS.md).
 *
 * Chunk format: u32 count, then per ID: f64 seenAt, u32 byte length, UTF-8 bytes (all big-endian).
 */
import type { DedupConfig } from '../../config/schema.js';
import { ByteWriter } from '../../util/bytes.js';

/** What the checkpoint must do for one key group's log. */
export interface DedupDelta {
  /** RPUSH to the key group's log: the IDs remembered since the last drain, oldest first. */
  appends: Array<{ keyGroup: number; chunk: Uint8Array }>;
  /** LPOP this many chunks from the head of the key group's log: every ID in them is forgotten. */
  trims: Array<{ keyGroup: number; count: number }>;
}

/** A key group's log as stored: its chunks, oldest first. */
export interface DedupLog {
  keyGroup: number;
  chunks: Uint8Array[];
}

const INITIAL_SLOTS = 1024;

export class DedupStage {
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

  constructor(cfg: DedupConfig) {
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

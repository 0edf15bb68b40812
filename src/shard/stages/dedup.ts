/**
 * Dedup by event ID, with a TTL in *stream time* (not wall time) so that a replay after a crash makes the
 * same decisions as the first run. An ID is stamped with the shard's stream time (monotone) when
 * remembered, so remembering order is also expiry order: the remembered IDs are a FIFO queue of slots, and
 * both expiry and the `maxEntries` bound forget from its head.
 *
 * Memory is typed arrays only, no string or `Map` entry per ID on the heap. Measured at the bench's bound
 * of 200,000 IDs (`--expose-gc`, heap + array buffers): ~54 bytes per ID, 134 with a `Map` of strings; in
 * a 2-shard process the `Map` and its strings, with the collector's headroom, were ~75 MB of RSS. Per ID:
 * its UTF-8 bytes in an arena, 27 bytes of slot columns, and one or two 4-byte table entries:
 *
 *   table   open addressing over the IDs' FNV-1a → index + 1 of the ID's live slot (0 = empty);
 *           deletion by backward shift, so there are no tombstones
 *   queue   slot of seq s at index s - base; head → the oldest slot that may still be live
 *           seenAt[]  [ t₁   t₂   t₃  … ]   f64 stream time when remembered
 *           group[]   [ g₁   g₂   g₃  … ]   u16 key group (its checkpoint log)
 *           hash[]    [ h₁   h₂   h₃  … ]   i32 FNV-1a of the ID
 *           start[], end[]                  i32 the ID's bytes in the arena
 *           live[]                          u8 1 while the slot is the ID's remembered one
 *   arena   the IDs' bytes in slot order; when the arrays or the arena are full, the queue's consumed
 *           front is dropped from both if it is an eighth or more, else they grow
 *
 * A re-remembered ID (seen again after its TTL) gets a new slot at the tail and its table entry is pointed
 * there; its old slot is no longer live and is skipped.
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
import { fnv1a, spread } from '../../routing/hash.js';
import { ByteWriter, bytesEqual, copyBytes } from '../../util/bytes.js';

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
  /**
   * Index + 1 of the live slot of each remembered ID, by the ID's hash; 0 = empty. (Indexes, not seqs:
   * seqs grow for as long as the shard runs and would overflow an Int32Array within a day.)
   */
  private table = new Int32Array(INITIAL_SLOTS * 2);
  /** Remembered (live) IDs. */
  private count = 0;
  private seenAt = new Float64Array(INITIAL_SLOTS);
  private group = new Uint16Array(INITIAL_SLOTS);
  private hash = new Int32Array(INITIAL_SLOTS);
  private start = new Int32Array(INITIAL_SLOTS);
  private end = new Int32Array(INITIAL_SLOTS);
  private live = new Uint8Array(INITIAL_SLOTS);
  /** Slots in use (index 0 … length - 1). */
  private length = 0;
  private arena = new Uint8Array(INITIAL_SLOTS * 16);
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
  /** The last ID looked up, as UTF-8 in `scratch[0, idLength)`, with its hash and table search result. */
  private scratch = new Uint8Array(256);
  private lastId: string | null = null;
  private idLength = 0;
  private idHash = 0;
  /** Table position of the last ID when held, else the empty position where it would go. */
  private found = 0;
  private readonly encoder = new TextEncoder();

  constructor(cfg: DedupConfig) {
    this.ttl = cfg.ttl;
    this.maxEntries = cfg.maxEntries;
  }

  get size(): number {
    return this.count;
  }

  /** Seq the next remembered slot gets. */
  private get tail(): number {
    return this.base + this.length;
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
      this.lookUp(e.id);
      // A stamp ahead of stream time comes from a stream time capped at restore (an event from the future
      // moved it before the check existed): stamped now instead, so it expires and keeps the queue in order.
      const seenAt = Math.min(e.seenAt, streamTime);
      e.chunkSeqs[e.at] = this.remember(e.keyGroup, seenAt); // ascending: ends at the chunk's last
    }
    while (this.count > this.maxEntries) this.forgetOldest();
    this.freshFrom = this.tail;
  }

  /** True for an ID seen within the TTL. Changes nothing (a stage may still fail after it; see Shard). */
  isDuplicate(id: string, streamTime: number): boolean {
    const at = this.lookUp(id);
    return at !== 0 && streamTime - (this.seenAt[at - 1] as number) < this.ttl;
  }

  /** Remembers an admitted ID: new, or expired and now re-stamped in a new slot at the tail. */
  record(id: string, keyGroup: number, streamTime: number): void {
    if (id !== this.lastId) this.lookUp(id); // usually just looked up by isDuplicate
    this.remember(keyGroup, streamTime);
    while (this.count > this.maxEntries) this.forgetOldest();
  }

  /**
   * Encodes `id` into `scratch` and finds it: returns the index + 1 of its live slot, or 0; `found` is its
   * table position, or the empty one where it would go.
   */
  private lookUp(id: string): number {
    const n = id.length;
    if (n * 3 > this.scratch.length) this.scratch = new Uint8Array(n * 3 * 2);
    const buf = this.scratch;
    let i = 0;
    for (; i < n; i++) {
      const c = id.charCodeAt(i);
      if (c >= 0x80) break;
      buf[i] = c;
    }
    const len = i === n ? n : this.encoder.encodeInto(id, buf).written; // IDs are usually ASCII
    const h = fnv1a(buf, 0, len) | 0;
    this.lastId = id;
    this.idLength = len;
    this.idHash = h;
    const table = this.table;
    const mask = table.length - 1;
    for (let p = spread(h) & mask; ; p = (p + 1) & mask) {
      const at = table[p] as number;
      if (at === 0) {
        this.found = p;
        return 0;
      }
      const k = at - 1;
      const from = this.start[k] as number;
      if (
        this.hash[k] === h &&
        (this.end[k] as number) - from === len &&
        bytesEqual(this.arena, from, buf, 0, len)
      ) {
        this.found = p;
        return at;
      }
    }
  }

  /** Remembers the ID just looked up (`scratch`, `found`) in a new slot at the tail; returns its seq. */
  private remember(keyGroup: number, seenAt: number): number {
    const len = this.idLength;
    if (this.length === this.seenAt.length || this.arenaUsed + len > this.arena.length) this.makeRoom(len);
    const i = this.length;
    const from = this.arenaUsed;
    copyBytes(this.scratch, 0, len, this.arena, from);
    const seq = this.base + i;
    this.length++;
    this.seenAt[i] = seenAt;
    this.group[i] = keyGroup;
    this.hash[i] = this.idHash;
    this.start[i] = from;
    this.end[i] = from + len;
    this.live[i] = 1;
    const old = this.table[this.found] as number;
    this.table[this.found] = i + 1;
    if (old !== 0)
      this.live[old - 1] = 0; // re-remembered: the old slot is stale
    else if (++this.count * 2 > this.table.length) this.rehash(this.table.length * 2);
    this.lastId = null; // `found` is spent
    return seq;
  }

  /** Bytes of the arena in use: up to the last slot's ID. */
  private get arenaUsed(): number {
    return this.length === 0 ? 0 : (this.end[this.length - 1] as number);
  }

  /**
   * Makes room for one more slot and `len` arena bytes: drops the queue's consumed front if it is an
   * eighth or more, and grows what is still full. The arrays are thus at most ~8/7 of the live IDs plus
   * the doubling slack, and each ID is moved at most ~7 times (amortised O(1)).
   */
  private makeRoom(len: number): void {
    if (this.head > 0 && this.head * 8 >= this.length) this.compact();
    if (this.length === this.seenAt.length) this.grow();
    const used = this.arenaUsed;
    if (used + len > this.arena.length) {
      const a = new Uint8Array(Math.max(this.arena.length * 2, used + len));
      a.set(this.arena.subarray(0, used));
      this.arena = a;
    }
  }

  private grow(): void {
    const n = this.seenAt.length * 2;
    this.seenAt = grown(this.seenAt, new Float64Array(n));
    this.group = grown(this.group, new Uint16Array(n));
    this.hash = grown(this.hash, new Int32Array(n));
    this.start = grown(this.start, new Int32Array(n));
    this.end = grown(this.end, new Int32Array(n));
    this.live = grown(this.live, new Uint8Array(n));
  }

  private rehash(capacity: number): void {
    const table = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let i = this.head; i < this.length; i++) {
      if (this.live[i] === 0) continue;
      let p = spread(this.hash[i] as number) & mask;
      while (table[p] !== 0) p = (p + 1) & mask;
      table[p] = i + 1;
    }
    this.table = table;
  }

  /** Index of the oldest live slot (skipping stale ones), or -1. */
  private peek(): number {
    while (this.head < this.length) {
      if (this.live[this.head] === 1) return this.head;
      this.head++;
    }
    return -1;
  }

  /** Forgets the ID of the live slot at index `i` (the oldest). */
  private forget(i: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let p = spread(this.hash[i] as number) & mask;
    while (table[p] !== i + 1) p = (p + 1) & mask;
    // Backward-shift deletion: move later entries of the probe run into the hole while that keeps each
    // reachable from its home position.
    for (;;) {
      table[p] = 0;
      let q = p;
      for (;;) {
        q = (q + 1) & mask;
        const s = table[q] as number;
        if (s === 0) {
          this.live[i] = 0;
          this.count--;
          this.head = i + 1;
          this.lastId = null;
          return;
        }
        const home = spread(this.hash[s - 1] as number) & mask;
        const stays = p <= q ? p < home && home <= q : p < home || home <= q;
        if (stays) continue;
        table[p] = s;
        p = q;
        break;
      }
    }
  }

  private forgetOldest(): void {
    const i = this.peek();
    if (i >= 0) this.forget(i);
  }

  /** Drops the consumed front of the queue and of the arena. */
  private compact(): void {
    const h = this.head;
    const n = this.length - h;
    const from = this.start[h] as number;
    const to = n === 0 ? from : (this.end[this.length - 1] as number);
    this.arena.copyWithin(0, from, to);
    for (let i = h; i < this.length; i++) {
      this.start[i] = (this.start[i] as number) - from;
      this.end[i] = (this.end[i] as number) - from;
    }
    this.seenAt.copyWithin(0, h, this.length);
    this.group.copyWithin(0, h, this.length);
    this.hash.copyWithin(0, h, this.length);
    this.start.copyWithin(0, h, this.length);
    this.end.copyWithin(0, h, this.length);
    this.live.copyWithin(0, h, this.length);
    const table = this.table;
    for (let p = 0; p < table.length; p++) if (table[p] !== 0) table[p] = (table[p] as number) - h; // all ≥ h + 1
    this.base += h;
    this.length = n;
    this.head = 0;
  }

  /**
   * Forgets IDs past their TTL at `streamTime` and returns the checkpoint changes since the last call:
   * the chunks to append, and how many fully forgotten chunks to drop per key group.
   */
  drain(streamTime: number): DedupDelta {
    const expireUpTo = streamTime - this.ttl;
    for (let i = this.peek(); i >= 0 && (this.seenAt[i] as number) <= expireUpTo; i = this.peek()) {
      this.forget(i);
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
    return { appends, trims };
  }

  /** One chunk per key group of the live IDs remembered since the last drain. */
  private appendFresh(): DedupDelta['appends'] {
    const byGroup = new Map<number, number[]>();
    const from = Math.max(this.freshFrom, this.base + this.head) - this.base;
    for (let i = from; i < this.length; i++) {
      if (this.live[i] === 0) continue; // forgotten again already (maxEntries below a batch's size)
      const g = this.group[i] as number;
      const slots = byGroup.get(g);
      if (slots === undefined) byGroup.set(g, [i]);
      else slots.push(i);
    }
    this.freshFrom = this.tail;
    const appends: DedupDelta['appends'] = [];
    for (const [keyGroup, slots] of byGroup) {
      const w = this.writer;
      w.reset(slots.length);
      for (const i of slots) {
        w.entry(this.arena, this.start[i] as number, this.end[i] as number, this.seenAt[i] as number);
      }
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

function grown<T extends Float64Array | Int32Array | Uint16Array | Uint8Array>(a: T, b: T): T {
  b.set(a as never);
  return b;
}

/** Writes one chunk; reuses its buffer. */
class ChunkWriter extends ByteWriter {
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

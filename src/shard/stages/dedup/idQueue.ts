/**
 * The remembered event IDs of a dedup stage, oldest first. An ID is stamped with the shard's stream time
 * (monotone) when remembered, so remembering order is also expiry order: the IDs are a FIFO queue of
 * slots, and both expiry and the `maxEntries` bound forget from its head.
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
 */
import { fnv1a, spread } from '../../../routing/hash.js';
import { bytesEqual, copyBytes } from '../../../util/bytes.js';
import type { ChunkWriter } from './chunk.js';

const INITIAL_SLOTS = 1024;

export class IdQueue {
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
  /** The last ID looked up, as UTF-8 in `scratch[0, idLength)`, with its hash and table search result. */
  private scratch = new Uint8Array(256);
  private lastId: string | null = null;
  private idLength = 0;
  private idHash = 0;
  /** Table position of the last ID when held, else the empty position where it would go. */
  private found = 0;
  private readonly encoder = new TextEncoder();

  /** Remembered (live) IDs. */
  get size(): number {
    return this.count;
  }

  /** Seq the next remembered slot gets. */
  get tail(): number {
    return this.base + this.length;
  }

  /** Seq of the oldest live slot, or {@link tail} when none is live: every slot before it is forgotten. */
  oldestSeq(): number {
    const oldest = this.peek();
    return oldest < 0 ? this.tail : this.base + oldest;
  }

  /** The stream time the ID of slot index `i` was remembered at. */
  stampOf(i: number): number {
    return this.seenAt[i] as number;
  }

  /**
   * Encodes `id` into `scratch` and finds it: returns the index + 1 of its live slot, or 0; `found` is its
   * table position, or the empty one where it would go.
   */
  lookUp(id: string): number {
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

  /**
   * Remembers `id` in a new slot at the tail, stamped `seenAt`: new, or re-remembered (its old slot is no
   * longer live). Returns the slot's seq. Usually `id` was just looked up, and is not searched again.
   */
  remember(id: string, keyGroup: number, seenAt: number): number {
    if (id !== this.lastId) this.lookUp(id);
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

  /** Forgets the oldest live ID, if any. */
  forgetOldest(): void {
    const i = this.peek();
    if (i >= 0) this.forget(i);
  }

  /** Forgets every ID stamped at or before `stamp`. */
  forgetUpTo(stamp: number): void {
    for (let i = this.peek(); i >= 0 && (this.seenAt[i] as number) <= stamp; i = this.peek()) this.forget(i);
  }

  /**
   * The live slots (indexes) remembered at seq `fromSeq` or later, by key group, each list in remembering
   * order; the map in first-seen key group order.
   */
  since(fromSeq: number): Map<number, number[]> {
    const byGroup = new Map<number, number[]>();
    const from = Math.max(fromSeq, this.base + this.head) - this.base;
    for (let i = from; i < this.length; i++) {
      if (this.live[i] === 0) continue; // forgotten again already (maxEntries below a batch's size)
      const g = this.group[i] as number;
      const slots = byGroup.get(g);
      if (slots === undefined) byGroup.set(g, [i]);
      else slots.push(i);
    }
    return byGroup;
  }

  /** Seq of the slot at index `i`. */
  seqOf(i: number): number {
    return this.base + i;
  }

  /** Writes the ID of slot index `i` into a checkpoint chunk. */
  writeTo(w: ChunkWriter, i: number): void {
    w.entry(this.arena, this.start[i] as number, this.end[i] as number, this.seenAt[i] as number);
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
}

function grown<T extends Float64Array | Int32Array | Uint16Array | Uint8Array>(a: T, b: T): T {
  b.set(a as never);
  return b;
}

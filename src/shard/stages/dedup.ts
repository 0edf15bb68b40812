/**
 * Dedup by event ID, with a TTL in *stream time* (not wall time) so that a replay after a crash makes the
 * same decisions as the first run. An ID is stamped with the shard's stream time (monotone) when
 * remembered, so remembering order is also expiry order:
 *
 *   seen:   Map id → { seenAt, keyGroup, seq }          O(1) lookup
 *   order:  [ id₁ id₂ id₃ … ]  (+ seq of each), head →   oldest first; expiring and enforcing maxEntries
 *                                                        pop from the head, O(1) amortised
 *
 * Why a separate queue: popping the oldest entry of a JS Map via `entries().next()` walks over the holes
 * earlier deletions left at its front — measured to make a full 200k-entry memory ~10× slower per event.
 * A re-remembered ID gets a new `seq`; its old queue slot is then stale and skipped.
 *
 * Every change is recorded per key group for the checkpoint (ZADD / ZREM on `…:d:<keyGroup>`).
 */
import type { DedupConfig } from '../../config/schema.js';

interface Seen {
  seenAt: number;
  keyGroup: number;
  seq: number;
}

export class DedupStage {
  private readonly seen = new Map<string, Seen>();
  private order: string[] = [];
  private orderSeq: number[] = [];
  private head = 0;
  private seq = 0;
  private readonly ttl: number;
  private readonly maxEntries: number;
  // IDs remembered or forgotten since the last drain, with their key group; drain() writes their final state.
  private touched = new Map<string, number>();

  constructor(cfg: DedupConfig) {
    this.ttl = cfg.ttl;
    this.maxEntries = cfg.maxEntries;
  }

  get size(): number {
    return this.seen.size;
  }

  /**
   * Restores remembered IDs (any order); does not record checkpoint changes. IDs stamped with the same
   * stream time come back in key-group order, not first-seen order: only when `maxEntries` is reached can
   * that make a restored shard forget a different one of them than an uninterrupted shard would.
   */
  restore(entries: Array<{ keyGroup: number; id: string; seenAt: number }>): void {
    const sorted = [...entries].sort((a, b) => a.seenAt - b.seenAt);
    for (const e of sorted) this.remember(e.id, e.keyGroup, e.seenAt);
  }

  /** True when the event is new (and remembers it); false for a duplicate within the TTL. */
  admit(id: string, keyGroup: number, streamTime: number): boolean {
    if (this.isDuplicate(id, streamTime)) return false;
    this.record(id, keyGroup, streamTime);
    return true;
  }

  /** True for an ID seen within the TTL. Changes nothing (a stage may still fail after it; see Shard). */
  isDuplicate(id: string, streamTime: number): boolean {
    const prev = this.seen.get(id);
    return prev !== undefined && streamTime - prev.seenAt < this.ttl;
  }

  /** Remembers an admitted ID: new, or expired and now re-stamped and moved to the tail. */
  record(id: string, keyGroup: number, streamTime: number): void {
    this.remember(id, keyGroup, streamTime);
    this.touched.set(id, keyGroup);
    while (this.seen.size > this.maxEntries) this.forgetOldest();
  }

  private remember(id: string, keyGroup: number, seenAt: number): void {
    const seq = ++this.seq;
    const prev = this.seen.get(id);
    if (prev === undefined) this.seen.set(id, { seenAt, keyGroup, seq });
    else {
      prev.seenAt = seenAt;
      prev.keyGroup = keyGroup;
      prev.seq = seq;
    }
    this.order.push(id);
    this.orderSeq.push(seq);
  }

  /** The oldest live entry of the queue (skipping stale slots), or undefined. */
  private peek(): { id: string; s: Seen } | undefined {
    while (this.head < this.order.length) {
      const id = this.order[this.head] as string;
      const s = this.seen.get(id);
      if (s !== undefined && s.seq === this.orderSeq[this.head]) return { id, s };
      this.head++;
    }
    return undefined;
  }

  private forgetOldest(): void {
    const oldest = this.peek();
    if (oldest === undefined) return;
    this.seen.delete(oldest.id);
    this.head++;
    this.touched.set(oldest.id, oldest.s.keyGroup);
  }

  /** Drops the consumed front of the queue once it is most of it (amortised O(1) per entry). */
  private compact(): void {
    if (this.head < 4096 || this.head * 2 < this.order.length) return;
    this.order = this.order.slice(this.head);
    this.orderSeq = this.orderSeq.slice(this.head);
    this.head = 0;
  }

  /**
   * Forgets IDs past their TTL (memory only: lookups already ignore them) and returns the checkpoint
   * changes since the last call.
   */
  drain(streamTime: number): {
    adds: Array<{ keyGroup: number; scoreMembers: Array<number | string> }>;
    removals: Array<{ keyGroup: number; ids: string[] }>;
    expireUpTo: number | null;
    expireGroups: number[];
  } {
    const expireUpTo = streamTime - this.ttl;
    const groups = new Set<number>();
    for (let o = this.peek(); o !== undefined && o.s.seenAt <= expireUpTo; o = this.peek()) {
      this.seen.delete(o.id);
      this.head++;
      groups.add(o.s.keyGroup);
    }
    this.compact();
    const adds = new Map<number, Array<number | string>>();
    const removals = new Map<number, string[]>();
    for (const [id, keyGroup] of this.touched) {
      const s = this.seen.get(id);
      if (s !== undefined) pushTo(adds, keyGroup, s.seenAt, id);
      else pushTo(removals, keyGroup, id);
    }
    this.touched.clear();
    return {
      adds: [...adds].map(([keyGroup, scoreMembers]) => ({ keyGroup, scoreMembers })),
      removals: [...removals].map(([keyGroup, ids]) => ({ keyGroup, ids })),
      expireUpTo: groups.size > 0 ? expireUpTo : null,
      expireGroups: [...groups],
    };
  }
}

function pushTo<T>(m: Map<number, T[]>, k: number, ...values: T[]): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, values);
  else list.push(...values);
}

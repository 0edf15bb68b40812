/**
 * Dedup by event ID, with a TTL in *stream time* (not wall time) so that a replay after a crash makes the
 * same decisions as the first run. Memory is a Map in insertion order: since an ID is stamped with the
 * shard's stream time (monotone) when inserted, insertion order is also expiry order, so expiring and
 * enforcing `maxEntries` both pop from the head of the Map, O(1) each.
 *
 * Every change is recorded per key group for the checkpoint (ZADD / ZREM on `…:d:<keyGroup>`).
 */
import type { DedupConfig } from '../../config/schema.js';

interface Seen {
  seenAt: number;
  keyGroup: number;
}

export class DedupStage {
  private readonly seen = new Map<string, Seen>();
  private readonly ttl: number;
  private readonly maxEntries: number;
  // IDs added or evicted since the last drain, with their key group; drain() writes their final state.
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
    for (const e of sorted) this.seen.set(e.id, { seenAt: e.seenAt, keyGroup: e.keyGroup });
  }

  /** True when the event is new (and remembers it); false for a duplicate within the TTL. */
  admit(id: string, keyGroup: number, streamTime: number): boolean {
    const prev = this.seen.get(id);
    if (prev !== undefined) {
      if (streamTime - prev.seenAt < this.ttl) return false;
      this.seen.delete(id); // expired: re-insert at the tail with a fresh stamp
    }
    this.seen.set(id, { seenAt: streamTime, keyGroup });
    this.touched.set(id, keyGroup);
    if (this.seen.size > this.maxEntries) this.evictOldest();
    return true;
  }

  private evictOldest(): void {
    const first = this.seen.entries().next();
    if (first.done) return;
    const [id, s] = first.value;
    this.seen.delete(id);
    this.touched.set(id, s.keyGroup);
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
    for (const [id, s] of this.seen) {
      if (s.seenAt > expireUpTo) break;
      this.seen.delete(id);
      groups.add(s.keyGroup);
    }
    const adds = new Map<number, Array<number | string>>();
    const removals = new Map<number, string[]>();
    for (const [id, keyGroup] of this.touched) {
      const s = this.seen.get(id);
      if (s !== undefined) pushTo(adds, keyGroup, s.seenAt, id);
      else pushTo(removals, keyGroup, id);
    }
    this.touched.clear();
    const out = {
      adds: [...adds].map(([keyGroup, scoreMembers]) => ({ keyGroup, scoreMembers })),
      removals: [...removals].map(([keyGroup, ids]) => ({ keyGroup, ids })),
      expireUpTo: groups.size > 0 ? expireUpTo : null,
      expireGroups: [...groups],
    };
    return out;
  }
}

function pushTo<T>(m: Map<number, T[]>, k: number, ...values: T[]): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, values);
  else list.push(...values);
}

/**
 * The dedup stage (IDs in typed arrays: an open-addressing table with backward-shift deletion, a FIFO of
 * slots and a byte arena) against the `Map`-based stage it replaced (helpers/mapDedup.ts): the same
 * decision for every event, the same size, and byte-identical checkpoint deltas at every drain — through
 * table growth, queue and arena compaction, re-remembered IDs, lookups without a record (a later stage
 * failed), and a restore from the checkpoint the deltas built.
 */
import { describe, expect, it } from 'vitest';
import type { DedupDelta, DedupLog } from '../src/shard/stages/dedup/checkpoint.js';
import { DedupStage } from '../src/shard/stages/dedup/dedupStage.js';
import { mulberry32 } from '../src/tools/produce/generator.js';
import { MapDedupStage } from './helpers/mapDedup.js';
import { admit } from './helpers/stages.js';

/** ID `n`: mostly short ASCII, some non-ASCII, some long. */
function idOf(n: number): string {
  if (n % 17 === 0) return `идент-${n}-€`;
  if (n % 29 === 0) return `${'long-'.repeat(30)}${n}`;
  return `e${n}`;
}

/** The Redis lists of the checkpoint, kept by applying each delta as the commit would (LPOP, then RPUSH). */
class Logs {
  readonly lists = new Map<number, Uint8Array[]>();

  apply(d: DedupDelta): void {
    for (const t of d.trims) {
      const l = this.lists.get(t.keyGroup) ?? [];
      expect(l.length).toBeGreaterThanOrEqual(t.count);
      l.splice(0, t.count);
      if (l.length === 0) this.lists.delete(t.keyGroup);
    }
    for (const a of d.appends) {
      const l = this.lists.get(a.keyGroup) ?? [];
      l.push(a.chunk);
      this.lists.set(a.keyGroup, l);
    }
  }

  stored(): DedupLog[] {
    return [...this.lists].map(([keyGroup, chunks]) => ({ keyGroup, chunks: [...chunks] }));
  }
}

interface Case {
  name: string;
  ttl: number;
  maxEntries: number;
  ids: number;
  events: number;
  /** Stream time advances 0…step per event. */
  step: number;
}

const CASES: Case[] = [
  // Bounded by maxEntries: the oldest are forgotten on every event; the queue compacts many times.
  { name: 'bounded by maxEntries', ttl: 1e12, maxEntries: 300, ids: 2000, events: 40_000, step: 1 },
  // Bounded by the TTL: IDs expire and come back (re-remembered in a new slot).
  { name: 'bounded by the TTL', ttl: 500, maxEntries: 1e9, ids: 3000, events: 40_000, step: 1 },
  // Neither binds for long: the table grows past 16k IDs.
  { name: 'growing', ttl: 20_000, maxEntries: 20_000, ids: 60_000, events: 50_000, step: 1 },
  // Many events at the same stream time, tiny bounds.
  { name: 'tiny bounds, equal times', ttl: 3, maxEntries: 2, ids: 6, events: 5_000, step: 2 },
];

describe('DedupStage against the Map-based stage', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const rnd = mulberry32(c.events + c.ids);
      const cfg = { ttl: c.ttl, maxEntries: c.maxEntries };
      let stage = new DedupStage(cfg);
      let ref = new MapDedupStage(cfg);
      const logs = new Logs();
      let st = 0;
      for (let i = 0; i < c.events; i++) {
        st += Math.floor(rnd() * (c.step + 1));
        const id = idOf(Math.floor(rnd() * c.ids));
        const keyGroup = Math.floor(rnd() * 8);
        if (rnd() < 0.1) {
          // A later stage failed: looked up, never recorded; then another ID is admitted.
          expect(stage.isDuplicate(id, st)).toBe(ref.isDuplicate(id, st));
          const other = idOf(Math.floor(rnd() * c.ids));
          expect(stage.isDuplicate(other, st)).toBe(ref.isDuplicate(other, st));
        }
        expect(admit(stage, id, keyGroup, st), `event ${i} id ${id}`).toBe(ref.admit(id, keyGroup, st));
        expect(stage.size).toBe(ref.size);
        if (rnd() < 0.05) {
          const d = stage.drain(st);
          expect(d).toEqual(ref.drain(st));
          logs.apply(d);
        }
        if (i === Math.floor(c.events / 2)) {
          // Restart both from the checkpoint; they must go on alike (and as before: same size).
          const d = stage.drain(st);
          expect(d).toEqual(ref.drain(st));
          logs.apply(d);
          const size = stage.size;
          stage = new DedupStage(cfg);
          ref = new MapDedupStage(cfg);
          stage.restore(logs.stored(), st);
          ref.restore(logs.stored(), st);
          expect(stage.size).toBe(ref.size);
          expect(stage.size).toBe(size);
        }
      }
      expect(stage.drain(st)).toEqual(ref.drain(st));
    });
  }

  it('forgets everything once the TTL has passed, and its log with it', () => {
    const stage = new DedupStage({ ttl: 10, maxEntries: 1e9 });
    const logs = new Logs();
    for (let i = 0; i < 10_000; i++) admit(stage, idOf(i), i % 4, i % 5);
    logs.apply(stage.drain(5));
    expect(stage.size).toBe(10_000);
    logs.apply(stage.drain(100));
    expect(stage.size).toBe(0);
    expect(logs.lists.size).toBe(0);
    for (let i = 0; i < 10_000; i += 97) expect(admit(stage, idOf(i), 0, 100)).toBe(true);
  });
});

/**
 * The order and rate-limit stages without Redis: a stage restored, at random points, from the checkpoint
 * its deltas built decides exactly like one that never stopped; and the order stage's rules on small
 * hand-made cases (overflow of maxBuffered, a duplicate held version, skip and dead-letter, idle keys).
 */
import { describe, expect, it } from 'vitest';
import { APPLY, HELD, OrderStage, type Released, STALE } from '../src/shard/stages/order/orderStage.js';
import { RateLimitStage } from '../src/shard/stages/rateLimit/rateLimitStage.js';
import { mulberry32 } from '../src/tools/produce/generator.js';
import type { ByteString } from '../src/util/bytes.js';

/** The per-key-group hashes a delta stream builds, as Redis would hold them. */
class Hashes {
  readonly groups = new Map<number, Map<string, ByteString>>();
  apply(d: {
    writes: Array<{ keyGroup: number; fields: ByteString[] }>;
    removals: Array<{ keyGroup: number; keys: ByteString[] }>;
  }): void {
    const name = (b: ByteString) => Buffer.from(b as Uint8Array).toString('latin1');
    for (const w of d.writes) {
      let g = this.groups.get(w.keyGroup);
      if (!g) this.groups.set(w.keyGroup, (g = new Map()));
      for (let i = 0; i < w.fields.length; i += 2)
        g.set(name(w.fields[i] as ByteString), w.fields[i + 1] as ByteString);
    }
    for (const r of d.removals) for (const k of r.keys) this.groups.get(r.keyGroup)?.delete(name(k));
  }
  stored(): Array<{ keyGroup: number; fields: ByteString[] }> {
    return [...this.groups].map(([keyGroup, m]) => ({
      keyGroup,
      fields: [...m].flatMap(([k, v]) => [Buffer.from(k, 'latin1'), Buffer.from(v as Uint8Array)]),
    }));
  }
}

const ORDER = { versionPath: 'v', maxBuffered: 3, timeout: 50, onGap: 'skip' as const, keyTtl: 400 };

/** What an order stage does with one event, as text: the offer and every release. */
function step(o: OrderStage, key: string, v: number, st: number): string {
  const out: Released = [];
  o.advance(st, out);
  const offered = o.offer(key, key.charCodeAt(1) % 4, v, new Uint8Array([v & 255, 7]), st, out);
  return `${offered}:${out.map((x) => `${x.gap ? 'gap' : 'go'}${x.entry === null ? '*' : (x.entry[0] as number)}`).join(',')}`;
}

describe('order stage', () => {
  it('restored from its deltas at random points, continues like one that never stopped', () => {
    for (const onGap of ['skip', 'deadLetter'] as const) {
      const cfg = { ...ORDER, onGap };
      const rnd = mulberry32(onGap === 'skip' ? 5 : 6);
      const next = new Map<string, number>();
      const a = new OrderStage(cfg);
      let b = new OrderStage(cfg);
      const hashes = new Hashes();
      let st = 0;
      const log: string[] = [];
      for (let i = 0; i < 20_000; i++) {
        const key = `k${Math.floor(rnd() * 12)}`;
        const n = (next.get(key) ?? 0) + 1;
        next.set(key, n);
        const v = Math.max(1, n + Math.floor(rnd() * 7) - 3); // shuffled, with repeats and gaps
        st += Math.floor(rnd() * 6);
        const x = step(a, key, v, st);
        expect(step(b, key, v, st), `event ${i}`).toBe(x);
        log.push(x);
        if (rnd() < 0.05) {
          hashes.apply(b.drain());
          a.drain();
          if (rnd() < 0.5) {
            b = new OrderStage(cfg); // a crash: continue from the checkpoint
            b.restore(hashes.stored());
            expect(b.held).toBe(a.held);
          }
        }
      }
      expect(log.some((l) => l.includes('gap'))).toBe(onGap === 'deadLetter');
      expect(log.filter((l) => l.startsWith(String(HELD))).length).toBeGreaterThan(1000);
    }
  });

  it('follows the rules on hand-made cases', () => {
    const o = new OrderStage(ORDER);
    expect(step(o, 'k1', 5, 0)).toBe(`${APPLY}:go*`); // the first version seen starts the key
    expect(step(o, 'k1', 7, 1)).toBe(`${HELD}:`);
    expect(step(o, 'k1', 7, 1)).toBe(`${STALE}:`); // held already
    expect(step(o, 'k1', 4, 1)).toBe(`${STALE}:`); // applied already
    expect(step(o, 'k1', 6, 2)).toBe(`${APPLY}:go*,go7`); // fills the gap: 6, then the held 7
    expect(step(o, 'k1', 10, 3)).toBe(`${HELD}:`);
    expect(step(o, 'k1', 11, 3)).toBe(`${HELD}:`);
    expect(step(o, 'k1', 13, 3)).toBe(`${HELD}:`);
    // a 4th held event exceeds maxBuffered 3: skip to 10, release 10 and 11; 12 is then next
    expect(step(o, 'k1', 12, 4)).toBe(`${APPLY}:go10,go11,go*,go13`);
    expect(step(o, 'k1', 20, 5)).toBe(`${HELD}:`);
    expect(step(o, 'k1', 22, 54)).toBe(`${HELD}:`); // 20 waits since 5: not yet due at 54
    // stream time 55 = 5 + 50: k1's gap is resolved first (skip to 20), then k2 starts
    expect(step(o, 'k2', 1, 55)).toBe(`${APPLY}:go20,go*`);
    expect(step(o, 'k1', 21, 55)).toBe(`${APPLY}:go*,go22`);
    expect(o.held).toBe(0);
    // idle for keyTtl (400): forgotten, so a lower version starts the key again
    expect(step(o, 'k2', 0, 454)).toBe(`${STALE}:`);
    expect(step(o, 'k2', 0, 855)).toBe(`${APPLY}:go*`);
  });

  it('with onGap: deadLetter gives up every held event and moves past them', () => {
    const o = new OrderStage({ ...ORDER, onGap: 'deadLetter' });
    expect(step(o, 'k1', 1, 0)).toBe(`${APPLY}:go*`);
    expect(step(o, 'k1', 3, 0)).toBe(`${HELD}:`);
    expect(step(o, 'k1', 5, 10)).toBe(`${HELD}:`);
    expect(step(o, 'k1', 2, 50)).toBe(`${STALE}:gap3,gap5`); // timed out at 50 before 2 was looked at
    expect(step(o, 'k1', 6, 50)).toBe(`${APPLY}:go*`);
  });
});

describe('rate-limit stage', () => {
  it('restored from its deltas at random points, decides like one that never stopped', () => {
    for (const per of ['key', 'shard'] as const) {
      const cfg = { per, rate: { events: 3, perMs: 100 }, burst: 4, onExcess: 'drop' as const };
      const rnd = mulberry32(per === 'key' ? 8 : 9);
      const a = new RateLimitStage(cfg);
      let b = new RateLimitStage(cfg);
      const hashes = new Hashes();
      let shardValue: string | null = null;
      let st = 0;
      let passed = 0;
      for (let i = 0; i < 20_000; i++) {
        const key = `k${Math.floor(rnd() * 30)}`;
        const ts = st + Math.floor(rnd() * 10) - 6; // some out of order
        const kg = Number(key.slice(1)) % 5; // a key's key group is fixed
        st = Math.max(st, ts + 3);
        const x = a.admits(key, kg, ts, st);
        expect(b.admits(key, kg, ts, st), `event ${i}`).toBe(x);
        if (x) {
          a.take(st);
          b.take(st);
          passed++;
        }
        if (rnd() < 0.05) {
          const d = b.drain(st);
          a.drain(st);
          hashes.apply(d);
          if (d.shard !== null) shardValue = d.shard;
          if (rnd() < 0.5) {
            b = new RateLimitStage(cfg);
            b.restore({ buckets: hashes.stored(), shard: shardValue === null ? [] : [shardValue] }, st);
          }
        }
      }
      expect(passed).toBeGreaterThan(1000);
      expect(passed).toBeLessThan(per === 'shard' ? 10_000 : 20_000);
      if (per === 'key') expect(a.size).toBeLessThanOrEqual(30);
    }
  });
});

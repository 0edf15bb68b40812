/**
 * The partition function (src/partition/partitionOf.ts) against test vectors computed independently
 * (Python, from the documented formula: docs/partitions.md), and the assignment's balance, stickiness and
 * determinism (src/partition/assignment.ts).
 */
import { describe, expect, it } from 'vitest';
import { assign } from '../src/partition/assignment.js';
import {
  DEFAULT_PARTITION_TEMPLATE,
  keyGroupRange,
  partitionOf,
  partitionOfKeyGroup,
  partitionStream,
} from '../src/partition/partitionOf.js';

describe('partitionOf', () => {
  // key, fnv1a32, key group of 256, partition of 8, partition of 3 — computed in Python
  const VECTORS: Array<[string, number, number, number, number]> = [
    ['order-17', 0xd43044ae, 174, 5, 2],
    ['user:42', 0x2f6b7b82, 130, 4, 1],
    ['', 0x811c9dc5, 197, 6, 2],
    ['é', 0x1e9de8c1, 193, 6, 2],
    ['customer-0001', 0xb5c6946f, 111, 3, 1],
    ['a', 0xe40c292c, 44, 1, 0],
  ];
  it.each(VECTORS)('%j → partition %#', (key, _hash, _group, p8, p3) => {
    expect(partitionOf(key, 256, 8)).toBe(p8);
    expect(partitionOf(key, 256, 3)).toBe(p3);
    expect(partitionOf(Buffer.from(key, 'utf8'), 256, 8)).toBe(p8);
    expect(partitionOf(key, 256, 1)).toBe(0);
  });

  it('gives every key group to exactly one partition, as contiguous ranges', () => {
    for (const [groups, parts] of [
      [256, 8],
      [256, 3],
      [100, 7],
      [64, 64],
    ] as const) {
      let next = 0;
      for (let p = 0; p < parts; p++) {
        const { from, to } = keyGroupRange(p, groups, parts);
        expect(from).toBe(next);
        for (let g = from; g < to; g++) expect(partitionOfKeyGroup(g, groups, parts)).toBe(p);
        next = to;
      }
      expect(next).toBe(groups);
    }
  });

  it('names partition streams by the template, and keeps the stream itself with one partition', () => {
    expect(partitionStream(DEFAULT_PARTITION_TEMPLATE, 'orders', 7, 8)).toBe('orders:{orders:7}');
    expect(partitionStream(DEFAULT_PARTITION_TEMPLATE, 'orders', 0, 1)).toBe('orders');
    expect(partitionStream('in-{p}', 'orders', 3, 4)).toBe('in-3');
  });
});

describe('assign', () => {
  const counts = (a: Array<string | null>) => {
    const m = new Map<string, number>();
    for (const o of a) if (o !== null) m.set(o, (m.get(o) ?? 0) + 1);
    return m;
  };

  it('balances: each member owns ⌊P/N⌋ or ⌈P/N⌉, every partition has an owner', () => {
    for (let n = 1; n <= 9; n++) {
      const members = Array.from({ length: n }, (_, i) => `m${i}`);
      for (const p of [1, 4, 8, 12]) {
        const a = assign(p, members, new Array(p).fill(null));
        expect(a.every((o) => o !== null)).toBe(true);
        for (const c of counts(a).values()) expect([Math.floor(p / n), Math.ceil(p / n)]).toContain(c);
      }
    }
  });

  it('is sticky: a join moves only what the newcomer takes, a leave only what the leaver had', () => {
    const two = assign(8, ['a', 'b'], new Array(8).fill(null));
    const three = assign(8, ['a', 'b', 'c'], two);
    const moved = three.filter((o, p) => o !== two[p]);
    expect(moved.every((o) => o === 'c')).toBe(true);
    expect(counts(three).get('c')).toBe(2);
    const left = assign(8, ['a', 'c'], three);
    for (let p = 0; p < 8; p++) if (three[p] !== 'b') expect(left[p]).toBe(three[p]);
  });

  it('is a function of its inputs only: member order does not matter, the dead own nothing', () => {
    const owners = ['x', 'a', 'a', 'b', null, 'b', 'x', 'a'];
    const a = assign(8, ['b', 'a'], owners);
    expect(assign(8, ['a', 'b', 'a'], owners)).toEqual(a);
    expect(a.includes('x')).toBe(false);
    expect(assign(3, [], owners.slice(0, 3))).toEqual([null, null, null]);
  });
});

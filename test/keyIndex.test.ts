/**
 * The window buckets' key index (byte keys → rows in insertion order) against a `Map` of strings: through
 * many table and arena growths, with keys looked up from inside a larger buffer (as from a batch), with
 * non-ASCII and long keys, and with every key on one hash (all probes collide).
 */
import { describe, expect, it } from 'vitest';
import { fnv1a } from '../src/routing/hash.js';
import { KeyIndex } from '../src/shard/stages/window/keyIndex.js';
import { mulberry32 } from '../src/tools/produce/generator.js';

const enc = new TextEncoder();

/** Key `n` in one of a few shapes: short ASCII, a shared prefix, non-ASCII, long. */
function keyOf(n: number): string {
  switch (n % 4) {
    case 0:
      return `u${n}`;
    case 1:
      return `customer-0000000000-${n}`;
    case 2:
      return `ключ-${n}-€`;
    default:
      return `${'x'.repeat(70)}${n}`;
  }
}

/** `key` placed inside a larger buffer at a random offset, as the batch reader hands it over. */
function inBuffer(key: string, rnd: () => number): [Uint8Array, number, number] {
  const k = enc.encode(key);
  const pad = Math.floor(rnd() * 20);
  const buf = new Uint8Array(pad + k.length + 7).fill(0x61);
  buf.set(k, pad);
  return [buf, pad, pad + k.length];
}

describe('KeyIndex', () => {
  for (const sameHash of [false, true]) {
    it(`matches a Map through growth${sameHash ? ', every key on one hash' : ''}`, () => {
      const rnd = mulberry32(sameHash ? 2 : 1);
      const idx = new KeyIndex();
      const ref = new Map<string, number>();
      const n = sameHash ? 600 : 40_000;
      for (let i = 0; i < n * 3; i++) {
        const key = keyOf(Math.floor(rnd() * n));
        const [buf, from, to] = inBuffer(key, rnd);
        const hash = sameHash ? 12345 : fnv1a(buf, from, to);
        const found = idx.find(buf, from, to, hash);
        const want = ref.get(key);
        expect(found).toBe(want ?? -1);
        if (want === undefined) {
          const row = idx.insert(buf, from, to, hash);
          expect(row).toBe(ref.size);
          ref.set(key, row);
        }
      }
      expect(idx.size).toBe(ref.size);
      for (const [key, row] of ref) expect(idx.key(row)).toBe(key);
      // Absent keys, including prefixes and extensions of held ones, are not found.
      for (const key of ['u', 'u1x', 'customer-0000000000-', keyOf(n + 1), '']) {
        const b = enc.encode(key);
        expect(idx.find(b, 0, b.length, sameHash ? 12345 : fnv1a(b))).toBe(-1);
      }
    });
  }

  it('hands out a key as text only when that gives back its exact bytes', () => {
    const idx = new KeyIndex();
    const keys = [
      [0xff],
      [0xfe],
      [0x6b, 0xff, 0xfe], // invalid UTF-8 inside a short key
      [...enc.encode('a-long-key-name-'), 0xff], // … inside a key of more than 12 bytes
      [0xef, 0xbb, 0xbf, 0x6b], // a leading BOM is part of the key
      [0xef, 0xbb, 0xbf, ...enc.encode('a-long-key-name')],
      [...enc.encode('a-long-key-name')],
      [0x6b],
      [0xc3, 0xa9], // é
    ].map((k) => Uint8Array.from(k));
    for (const k of keys) expect(idx.rowOf(k).added).toBe(true);
    for (const [row, k] of keys.entries()) {
      const key = idx.key(row);
      expect(typeof key === 'string' ? enc.encode(key) : key).toEqual(k);
    }
    expect([idx.key(0), idx.key(4), idx.key(8)]).toEqual([Uint8Array.of(0xff), '\uFEFFk', 'é']);
  });

  it('rowOf adds a string key once and finds it from its bytes', () => {
    const idx = new KeyIndex();
    expect(idx.rowOf('a')).toEqual({ row: 0, added: true });
    expect(idx.rowOf('bé')).toEqual({ row: 1, added: true });
    expect(idx.rowOf('a')).toEqual({ row: 0, added: false });
    const b = enc.encode('bé');
    expect(idx.find(b, 0, b.length, fnv1a(b))).toBe(1);
    expect(idx.key(1)).toBe('bé');
    expect(idx.byteLength).toBeGreaterThan(0);
  });
});

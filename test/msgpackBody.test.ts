/**
 * The msgpack body decoder's fast path must give exactly what @msgpack/msgpack gives — the same value, or
 * an error — for any input: compared on random bodies of every msgpack type and on damaged ones. Its
 * projection (only the fields the shard uses, read in place) must, whenever it answers, give what the
 * decoded object holds under those names.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { MsgpackBodyDecoder } from '../src/shard/stages/msgpackBody.js';

let seed = 7;
const rnd = () => {
  seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
  return seed / 2 ** 32;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

const KEYS = ['id', 'ts', 'amount', 'type', '', 'ключ', '🔑', 'k'.repeat(40), '__proto__', 'a.b'];
const STRINGS = ['', 'order', 'e-123', 'ünïcødé', '🙂 emoji', 'x'.repeat(300), 'y'.repeat(70_000), '\uFFFD'];
const NUMBERS = [
  0,
  1,
  127,
  128,
  255,
  256,
  65_535,
  65_536,
  2 ** 32 - 1,
  2 ** 32,
  1.7e12,
  2 ** 53 + 2,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32_768,
  -32_769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -1.7e12,
  0.5,
  -2.25,
  3.141592653589793,
  1e300,
];

function value(depth: number): unknown {
  const r = rnd();
  if (r < 0.35) return pick(NUMBERS);
  if (r < 0.6) return pick(STRINGS);
  if (r < 0.7) return pick([true, false, null]);
  if (r < 0.78) return Uint8Array.from([1, 2, 3, Math.floor(rnd() * 256)]);
  if (depth > 1) return 'leaf';
  if (r < 0.88) return [value(depth + 1), value(depth + 1)];
  return body(depth + 1);
}

function body(depth = 0): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const n = rnd() < 0.05 ? 20 : Math.floor(rnd() * 7);
  for (let i = 0; i < n; i++) {
    const k = rnd() < 0.3 ? `f${i}` : pick(KEYS);
    if (k === '__proto__') continue; // a plain object cannot hold it as an own key; see the crafted test
    o[k] = value(depth);
  }
  return o;
}

function outcome(decode: () => unknown): { value: unknown } | { error: true } {
  try {
    return { value: decode() };
  } catch {
    return { error: true };
  }
}

function expectSame(bytes: Uint8Array, fast: MsgpackBodyDecoder, general: Decoder): void {
  const a = outcome(() => fast.decode(bytes));
  const b = outcome(() => general.decode(bytes));
  expect(a).toEqual(b);
}

describe('MsgpackBodyDecoder', () => {
  const fast = new MsgpackBodyDecoder();
  const general = new Decoder();
  const encoders = [
    new Encoder(),
    new Encoder({ forceFloat32: true }),
    new Encoder({ forceIntegerToFloat: true }),
  ];

  it('decodes random bodies exactly like @msgpack/msgpack', () => {
    for (let i = 0; i < 3000; i++) expectSame(pick(encoders).encode(body()), fast, general);
  });

  it('agrees on damaged bodies: truncated, with flipped or extra bytes', () => {
    for (let i = 0; i < 3000; i++) {
      const bytes = pick(encoders).encode(body()).slice();
      const r = rnd();
      let damaged: Uint8Array;
      if (r < 0.33) damaged = bytes.subarray(0, Math.floor(rnd() * bytes.length));
      else if (r < 0.66) {
        damaged = bytes;
        for (let k = 0; k < 3; k++) damaged[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
      } else damaged = Uint8Array.from([...bytes, Math.floor(rnd() * 256)]);
      expectSame(damaged, fast, general);
    }
  });

  it('agrees on crafted cases: invalid UTF-8, __proto__ keys, non-string keys, empty input', () => {
    const cases = [
      [0x81, 0xa2, 0xc3, 0x28, 0x01], // key with invalid UTF-8
      [0x81, 0xa1, 0x6b, 0xa2, 0xff, 0xfe], // value with invalid UTF-8
      [0x81, 0xa9, ...Buffer.from('__proto__'), 0xc3],
      [0x81, 0x01, 0x02], // integer key
      [0x80], // empty map
      [0xde, 0x00, 0x01, 0xa1, 0x61, 0x05], // map16
      [0xc1], // never used
      [],
      [0x92, 0x01, 0x02], // an array, not a map
    ];
    for (const c of cases) expectSame(Uint8Array.from(c), fast, general);
  });

  describe('project', () => {
    const NAMES = ['id', 'ts', 'amount', 'k'.repeat(40), 'ключ'];
    const names = NAMES.map((n) => new TextEncoder().encode(n));
    const projected: unknown[] = new Array(NAMES.length);

    /** Projects `body` placed inside a larger buffer; when it answers, compares with the full decode. */
    function expectAgrees(body: Uint8Array): boolean {
      const pad = Math.floor(rnd() * 5);
      const within = new Uint8Array(pad + body.length + 3).fill(0xc1); // 0xc1: never valid msgpack
      within.set(body, pad);
      if (!fast.project(within, pad, pad + body.length, names, projected)) return false;
      const full = outcome(() => general.decode(body));
      expect(full).not.toHaveProperty('error');
      const value = (full as { value: Record<string, unknown> }).value;
      expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
      expect(projected).toEqual(NAMES.map((n) => (Object.hasOwn(value, n) ? value[n] : undefined)));
      return true;
    }

    it('agrees with the full decode on random and damaged bodies, in place within a larger buffer', () => {
      let answered = 0;
      for (let i = 0; i < 6000; i++) {
        const bytes = pick(encoders).encode(body()).slice();
        if (i % 2 === 1) {
          const at = Math.floor(rnd() * bytes.length);
          if (rnd() < 0.5) bytes[at] = Math.floor(rnd() * 256);
          else {
            if (expectAgrees(bytes.subarray(0, at))) answered++;
            continue;
          }
        }
        if (expectAgrees(bytes)) answered++;
      }
      // Bodies with a nested value, binary or an odd key go the full way; flat ones must not.
      expect(answered).toBeGreaterThan(1000);
    });

    it('answers for flat bodies and leaves __proto__, non-ASCII and duplicate keys to the full decode', () => {
      const enc = new Encoder();
      expect(expectAgrees(enc.encode({ id: 'e-1', ts: 1.7e12, amount: 12, type: 'order' }))).toBe(true);
      expect(projected).toEqual(['e-1', 1.7e12, 12, undefined, undefined]);
      expect(expectAgrees(Uint8Array.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0xc3]))).toBe(false);
      expect(expectAgrees(Uint8Array.from([0x81, 0xa2, 0xc3, 0x28, 0x01]))).toBe(false);
      // {ts: 1, ts: 2}: the object keeps the last value, and so does the projection
      expect(expectAgrees(Uint8Array.from([0x82, 0xa2, 0x74, 0x73, 0x01, 0xa2, 0x74, 0x73, 0x02]))).toBe(
        true,
      );
      expect(projected[1]).toBe(2);
      expect(expectAgrees(enc.encode({ id: 'x', nested: { ts: 1 } }))).toBe(false);
    });
  });
});

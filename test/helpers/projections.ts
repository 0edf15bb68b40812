/**
 * Projection tests: order events with fractional amounts (sums whose bits depend on the order of
 * additions), statuses and nested fields, plus duplicates, out-of-order, malformed and binary-key entries;
 * and reading every projection hash back (SCAN + HGETALL) to compare with the reference whole.
 */
import { Encoder } from '@msgpack/msgpack';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { mulberry32 } from '../../src/tools/produce/generator.js';
import { normalise } from './projectionReference.js';

const encoder = new Encoder();

/**
 * `count` entries over `keys` keys (plus a non-UTF-8 key), event times from `startTs`: ~80 % good,
 * 6 % duplicates (an earlier entry re-sent verbatim), 8 % out of order (up to 3 s back), 6 % malformed in
 * turn: amount "abc", no ts, undecodable body, no status, no key, amount as a decimal string.
 */
export async function produceOrders(
  redis: Redis,
  stream: string,
  count: number,
  keys: number,
  seed: number,
  startTs: number,
): Promise<void> {
  const rand = mulberry32(seed);
  const sent: Array<Array<string | Buffer>> = [];
  let pipe = redis.pipeline();
  let bad = 0;
  for (let i = 0; i < count; i++) {
    const k = Math.floor(rand() * keys);
    const key: string | Buffer = k === 0 ? Buffer.from([0xff, 0xfe, 0x6b]) : `c${k}`;
    const ts = startTs + i * 5;
    const amount = Math.round(rand() * 100_000) / 100; // two decimals: 0.1 + 0.2 ≠ 0.3
    const body: Record<string, unknown> = {
      id: `${seed}-${i}`,
      ts,
      amount,
      status: ['created', 'paid', 'shipped', 'cancelled'][Math.floor(rand() * 4)],
      customer: { tier: rand() < 0.5 ? 'gold' : 'silver', since: 2000 + (i % 20) },
    };
    const r = rand();
    let fields: Array<string | Buffer> | undefined;
    if (r < 0.06 && sent.length > 0)
      fields = sent[Math.floor(rand() * sent.length)] as Array<string | Buffer>;
    else {
      if (r < 0.14) body.ts = ts - 1 - Math.floor(rand() * 3000);
      else if (r < 0.2) {
        switch (bad++ % 6) {
          case 0:
            body.amount = 'abc';
            break;
          case 1:
            delete body.ts;
            break;
          case 2:
            fields = ['key', key, 'data', Buffer.from([0xc1, 0x00])];
            break;
          case 3:
            delete body.status;
            break;
          case 4:
            fields = ['data', Buffer.from(encoder.encode(body))];
            break;
          default:
            body.amount = String(amount);
        }
      }
      fields ??= ['key', key, 'data', Buffer.from(encoder.encode(body))];
      sent.push(fields);
    }
    pipe.xadd(stream, '*', ...fields);
    if (pipe.length >= 1000) {
      await pipe.exec();
      pipe = redis.pipeline();
    }
  }
  await pipe.exec();
}

/** Every hash whose key matches `pattern`: key (latin1) → fields (latin1 values). */
export async function readHashes(
  redis: Redis,
  pattern: string,
): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next.toString();
    for (const k of keys) {
      const flat = await redis.hgetallBuffer(k);
      const rec: Record<string, string> = {};
      for (const [f, v] of Object.entries(flat)) rec[f] = v.toString('latin1');
      out.set(k.toString('latin1'), rec);
    }
  } while (cursor !== '0');
  return out;
}

/** Compares every projection hash under `pattern` with the reference's, whole. */
export async function expectProjectionsMatch(
  redis: Redis,
  pattern: string,
  expected: Map<string, Record<string, string>>,
  sumFields: ReadonlySet<string>,
): Promise<void> {
  const actual = await readHashes(redis, pattern);
  const problems: string[] = [];
  for (const [key, want] of expected) {
    const got = actual.get(key);
    const norm = got === undefined ? undefined : normalise(got, sumFields);
    if (JSON.stringify(norm) !== JSON.stringify(want)) {
      problems.push(`${JSON.stringify(key)}: expected ${JSON.stringify(want)}, got ${JSON.stringify(norm)}`);
    }
  }
  for (const key of actual.keys())
    if (!expected.has(key)) problems.push(`${JSON.stringify(key)}: not expected`);
  expect(problems.slice(0, 5)).toEqual([]);
  expect(actual.size).toBe(expected.size);
}

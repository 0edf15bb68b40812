/**
 * `dedup.by: content`, whole output against the brute-force oracle on 4 shards: random input with
 * out-of-order, duplicate (resent: the same bytes) and malformed events, deduplicated by the whole body
 * and by named fields (which makes many distinct events "the same"); plus the canonical encoding's rules.
 */
import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { canonical } from '../src/shard/stages/dedup/contentKey.js';
import { produce } from '../src/tools/produce/producer.js';
import { expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import {
  pipelineConfig,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';

useTestHooks();

const T = 1_700_000_000_000;

async function runAndCompare(prefix: string, seed: number, dedup: Record<string, unknown>) {
  const n = testNames(prefix);
  await produce(redis, n.input, {
    count: 20_000,
    keys: 200,
    seed,
    duplicatePct: 5,
    outOfOrderPct: 10,
    malformedPct: 1,
    startTs: T,
    intervalMs: 0.7,
    outOfOrderMaxMs: 2500,
    encoding: 'msgpack',
  });
  // Same content, other event IDs (no ID at all for one): only content dedup sees them as the same.
  for (const id of ['x1', 'x2', undefined]) {
    await redis.xadd(
      n.input,
      '*',
      'key',
      'k1',
      'data',
      Buffer.from(encode({ id, ts: T + 5, amount: 7, type: 'z' })),
    );
  }
  const config = pipelineConfig(n, {
    shards: 4,
    stages: [{ dedup: { ttl: '2s', maxEntries: 3000, ...dedup } }],
  });
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'pass-through');
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
  return expected;
}

it('by content (the whole body) equals the reference', async () => {
  const expected = await runAndCompare('content', 41, { by: 'content' });
  expect(expected.counts.deduplicated).toBeGreaterThan(500); // the resent events
  expect(expected.counts.deadLettered.E_MISSING_ID).toBeUndefined(); // no ID needed
});

it('by content of named fields equals the reference', async () => {
  const expected = await runAndCompare('fields', 42, { by: 'content', fields: ['amount', 'type'] });
  // 2,000 (amount, type) pairs among ~900 events per 2 s TTL per shard: many distinct events collide
  expect(expected.counts.deduplicated).toBeGreaterThan(2000);
});

describe('canonical encoding', () => {
  it('is independent of key order, and tells types and missing from null apart', () => {
    expect(canonical({ a: 1, b: [2, 'x'] })).toBe(canonical({ b: [2, 'x'], a: 1 }));
    const distinct = [1, '1', true, 'true', null, undefined, [1], { 1: 1 }, new Uint8Array([1]), '', 0];
    expect(new Set(distinct.map(canonical)).size).toBe(distinct.length);
    expect(canonical(['a,b'])).not.toBe(canonical(['a', 'b']));
    expect(canonical(-0)).toBe(canonical(0));
  });
});

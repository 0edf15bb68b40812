/**
 * Rate limits in event time, whole output against the brute-force oracle on 4 shards: random input with
 * out-of-order, duplicate and malformed events, per key (excess dropped) and per shard (excess
 * dead-lettered); and across a kill -9 and restart, behind a content dedup, the output equals the
 * oracle's (an uninterrupted run's): the buckets are in the checkpoint and refill in event time.
 */
import { expect, it } from 'vitest';
import { produce } from '../src/tools/produce/producer.js';
import { killMidLoad, restartAndCompare } from './helpers/crash.js';
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

function input(seed: number, count: number) {
  return {
    count,
    keys: 200,
    seed,
    duplicatePct: 5,
    outOfOrderPct: 10,
    malformedPct: 1,
    startTs: T,
    intervalMs: 0.7, // ~7 events/s per key, ~360/s per shard (4 shards)
    outOfOrderMaxMs: 2500,
    encoding: 'msgpack' as const,
  };
}

async function runAndCompare(prefix: string, seed: number, stages: unknown[]) {
  const n = testNames(prefix);
  await produce(redis, n.input, input(seed, 20_000));
  const config = pipelineConfig(n, { shards: 4, stages });
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

it('per key, excess dropped: equals the reference', async () => {
  const expected = await runAndCompare('rl-key', 51, [
    { filter: { where: [{ field: 'type', op: 'eq', value: 'order' }] } },
    { rateLimit: { per: 'key', rate: '4/s', burst: 3 } },
  ]);
  expect(expected.counts.rateLimited).toBeGreaterThan(500);
  expect(expected.counts.passed).toBeGreaterThan(5000);
});

it('per shard, excess dead-lettered: equals the reference', async () => {
  const expected = await runAndCompare('rl-shard', 52, [
    { rateLimit: { per: 'shard', rate: '300/s', burst: 40, onExcess: 'deadLetter' } },
  ]);
  expect(expected.counts.deadLettered.E_RATE_LIMITED).toBeGreaterThan(500);
});

it('kill -9 mid-load, restart: content dedup + rate limit output equals the reference', async () => {
  const n = testNames('rl-kill9');
  const COUNT = 150_000;
  await produce(redis, n.input, input(53, COUNT));
  const config = pipelineConfig(n, {
    shards: 4,
    stages: [
      { dedup: { by: 'content', ttl: '1s', maxEntries: 5000 } },
      { rateLimit: { per: 'key', rate: '5/s', burst: 2, onExcess: 'deadLetter' } },
    ],
  });
  const expected = await expectedFor(redis, n, config);
  expect(expected.counts.deduplicated).toBeGreaterThan(1000);
  expect(expected.counts.deadLettered.E_RATE_LIMITED).toBeGreaterThan(1000);

  await killMidLoad(redis, n, config, COUNT);

  await restartAndCompare(redis, n, config, expected, 'pass-through');
});

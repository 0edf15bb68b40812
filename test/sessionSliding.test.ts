/**
 * Session and sliding windows, whole output against the brute-force oracle (test/helpers/reference.ts):
 * random input with out-of-order, late, duplicate and malformed events across 4 shards.
 */
import { expect, it } from 'vitest';
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

const aggregates = [
  { fn: 'count' },
  { fn: 'sum', field: 'amount' },
  { fn: 'min', field: 'amount' },
  { fn: 'max', field: 'amount' },
  { fn: 'avg', field: 'amount' },
];

async function runAndCompare(prefix: string, seed: number, stages: unknown[], count: number) {
  const n = testNames(prefix);
  await produce(redis, n.input, {
    count,
    keys: 200,
    seed,
    duplicatePct: 5,
    outOfOrderPct: 10,
    malformedPct: 1,
    startTs: 1_700_000_000_000,
    intervalMs: 0.7,
    outOfOrderMaxMs: 2500,
    encoding: 'msgpack',
  });
  const config = pipelineConfig(n, { shards: 4, stages });
  const expected = await expectedFor(redis, n, config);
  expect(expected.counts.late).toBeGreaterThan(100);
  expect(expected.counts.windowsEmitted).toBeGreaterThan(1000);
  expect(expected.counts.deadLettered.E_BAD_BODY ?? 0).toBeGreaterThan(0);

  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
  return expected;
}

it('session windows behind a dedup stage equal the reference', async () => {
  // 200 keys, an event every 0.7 ms: a key's events are ~140 ms apart, so a 150 ms gap makes sessions
  // that often split and often merge on an out-of-order event
  await runAndCompare(
    'session',
    21,
    [
      { dedup: { ttl: '700ms', maxEntries: 150 } },
      { window: { type: 'session', gap: '150ms', grace: '100ms', idleClose: '1s', aggregates } },
    ],
    30_000,
  );
});

it('sliding windows equal the reference', async () => {
  await runAndCompare(
    'sliding',
    22,
    [{ window: { type: 'sliding', size: '500ms', grace: '200ms', idleClose: '1s', aggregates } }],
    20_000,
  );
});

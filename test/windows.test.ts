/**
 * Event-time windows, whole output against the brute-force oracle: random input with out-of-order,
 * late, duplicate and malformed events, small windows so that a good share of the out-of-order events
 * arrive after their windows closed.
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

async function runAndCompare(prefix: string, seed: number, stages: unknown[]) {
  const n = testNames(prefix);
  await produce(redis, n.input, {
    count: 30_000,
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
  // the input exercises what it should
  expect(expected.counts.late).toBeGreaterThan(100);
  expect(expected.counts.windowsEmitted).toBeGreaterThan(1000);

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

it('tumbling windows equal the reference', async () => {
  await runAndCompare('tumbling', 11, [
    { window: { type: 'tumbling', size: '1s', grace: '200ms', idleClose: '1s', aggregates } },
  ]);
});

it('hopping windows behind a filter and a dedup stage equal the reference', async () => {
  const expected = await runAndCompare('hopping', 12, [
    {
      filter: {
        where: [
          { field: 'type', op: 'eq', value: 'order' },
          { field: 'amount', op: 'gt', value: 50 },
        ],
      },
    },
    { dedup: { ttl: '700ms', maxEntries: 150 } },
    {
      window: { type: 'hopping', size: '1s', advance: '500ms', grace: '200ms', idleClose: '1s', aggregates },
    },
  ]);
  expect(expected.counts.filtered).toBeGreaterThan(1000);
  expect(expected.counts.deduplicated).toBeGreaterThan(50);
});

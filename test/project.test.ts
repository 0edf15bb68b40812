/**
 * The project stage against the brute-force reference on 4 shards: random orders with fractional amounts,
 * duplicates (behind a dedup stage), out-of-order, malformed and non-UTF-8 keys; every hash field of every
 * projection key (HGETALL) must equal the reference, and the sink and dead letters too. Across a kill -9
 * and restart the projections equal an uninterrupted run's: their writes go through the exactly-once commit.
 */
import { expect, it } from 'vitest';
import { killMidLoad, restartAndCompare } from './helpers/crash.js';
import { expectDeadLettersMatch, expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import {
  pipelineConfig,
  redis,
  startPipeline,
  type TestNames,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { expectProjectionsMatch, produceOrders } from './helpers/projections.js';

useTestHooks();

const T = Date.now() - 3_600_000;
const SUMS = new Set(['total']);

function stages(n: TestNames, ttl?: string) {
  return [
    { dedup: { ttl: '10m' } },
    {
      project: {
        key: `${n.sink}:proj:{tag}:{key}`,
        ...(ttl === undefined ? {} : { ttl }),
        fields: {
          orders: { fn: 'count' },
          total: { fn: 'sum', field: 'amount' },
          smallest: { fn: 'min', field: 'amount' },
          largest: { fn: 'max', field: 'amount' },
          status: { fn: 'latest', field: 'status' },
          firstStatus: { fn: 'first', field: 'status' },
          tier: { fn: 'latest', field: 'customer.tier' },
          customer: { fn: 'latest', field: 'customer' },
          lastSeen: { fn: 'last_seen' },
        },
      },
    },
  ];
}

it('every hash field of every key equals the reference (and sink, dead letters)', async () => {
  const n = testNames('proj');
  await produceOrders(redis, n.input, 20_000, 300, 61, T);
  const config = pipelineConfig(n, { shards: 4, stages: stages(n, '1h') });
  const expected = await expectedFor(redis, n, config);
  expect(expected.projections.size).toBeGreaterThan(290);
  expect(expected.counts.deduplicated).toBeGreaterThan(500);
  expect(expected.counts.deadLettered.E_BAD_FIELD).toBeGreaterThan(100);
  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'pass-through');
  await expectProjectionsMatch(redis, `${n.sink}:proj:*`, expected.projections, SUMS);
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
  // ttl: every hash expires about an hour after its last update
  for (const key of expected.projections.keys()) {
    const ttl = await redis.pttl(Buffer.from(key, 'latin1'));
    expect(ttl > 3_500_000 && ttl <= 3_600_000, `PTTL of ${key}: ${ttl}`).toBe(true);
  }
});

it('before a window: dead letters (late ones still projected) and projections equal the reference', async () => {
  const n = testNames('proj-win');
  await produceOrders(redis, n.input, 20_000, 200, 63, T);
  const window = {
    window: { size: '1s', grace: '500ms', idleClose: 0, aggregates: [{ fn: 'sum', field: 'amount' }] },
  };
  const config = pipelineConfig(n, { shards: 3, stages: [...stages(n), window] });
  const expected = await expectedFor(redis, n, config);
  expect(expected.counts.late).toBeGreaterThan(100);
  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
  await expectProjectionsMatch(redis, `${n.sink}:proj:*`, expected.projections, SUMS);
  await expectDeadLettersMatch(redis, n, expected);
});

it('kill -9 mid-load, restart: every projection equals the reference', async () => {
  const n = testNames('proj-kill9');
  const COUNT = 120_000;
  await produceOrders(redis, n.input, COUNT, 2000, 62, T);
  const config = pipelineConfig(n, { shards: 4, stages: stages(n) });
  const expected = await expectedFor(redis, n, config);
  await killMidLoad(redis, n, config, COUNT);
  await restartAndCompare(redis, n, config, expected, 'pass-through');
  await expectProjectionsMatch(redis, `${n.sink}:proj:*`, expected.projections, SUMS);
});

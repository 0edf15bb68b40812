/**
 * Restarts: (a) entries already pending for the pipeline's consumer are processed; (b) after kill -9
 * mid-load and a restart with the same config, the output equals the oracle's — no window missing or
 * emitted twice — and nothing is left pending.
 */
import { expect, it } from 'vitest';
import { produce } from '../src/tools/produce/producer.js';
import { killMidLoad, restartAndCompare } from './helpers/crash.js';
import { expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import {
  groupState,
  pipelineConfig,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';

useTestHooks();

const T = 1_700_000_000_000;

it('processes entries already pending for its consumer name', async () => {
  const n = testNames('pending');
  await redis.xgroup('CREATE', n.input, n.group, '0', 'MKSTREAM');
  await produce(redis, n.input, {
    count: 5000,
    keys: 300,
    seed: 31,
    duplicatePct: 0,
    outOfOrderPct: 0,
    malformedPct: 0,
    startTs: T,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    encoding: 'msgpack',
  });
  // a previous life of the same consumer read these and died before acking them
  const read = (await redis.xreadgroup(
    'GROUP',
    n.group,
    n.consumer,
    'COUNT',
    1500,
    'STREAMS',
    n.input,
    '>',
  )) as Array<[string, unknown[]]> | null;
  expect(read?.[0]?.[1]).toHaveLength(1500);
  expect((await groupState(redis, n.input, n.group)).pending).toBe(1500);

  const config = pipelineConfig(n, { shards: 2 });
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config);
  const state = await waitForDrain(redis, { stream: n.input, group: n.group, outputs: { [n.sink]: 5000 } });
  expect(await p.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'pass-through');
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
});

it('kill -9 mid-load, restart: output equals a run without the crash', async () => {
  const n = testNames('kill9');
  const COUNT = 200_000;
  await produce(redis, n.input, {
    count: COUNT,
    keys: 200,
    seed: 32,
    duplicatePct: 3,
    outOfOrderPct: 5,
    malformedPct: 1,
    startTs: T,
    intervalMs: 0.5,
    outOfOrderMaxMs: 2000,
    encoding: 'msgpack',
  });
  const config = pipelineConfig(n, {
    shards: 2,
    stages: [
      { dedup: { ttl: '1s', maxEntries: 5000 } },
      {
        window: {
          size: '1s',
          grace: '200ms',
          idleClose: '2s',
          aggregates: [
            { fn: 'sum', field: 'amount' },
            { fn: 'min', field: 'amount' },
          ],
        },
      },
    ],
  });
  const expected = await expectedFor(redis, n, config);
  expect(expected.counts.late).toBeGreaterThan(0);
  expect(expected.counts.deduplicated).toBeGreaterThan(0);

  await killMidLoad(redis, n, config, COUNT);

  await restartAndCompare(redis, n, config, expected, 'windows');
});

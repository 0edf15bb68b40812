/**
 * Backpressure: with a backlog far larger than the in-flight bound, the entries delivered but not yet
 * acked (the group's pending count) never exceed shards × maxInFlightPerShard plus one read — reading
 * waits for commits instead of pulling the backlog into memory.
 */
import { expect, it } from 'vitest';
import { produce } from '../src/tools/produce/producer.js';
import {
  groupState,
  pipelineConfig,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
} from './helpers/pipeline.js';

useTestHooks();

it('keeps the entries in flight under the bound while draining a backlog', async () => {
  const n = testNames('backpressure');
  const COUNT = 60_000;
  const SHARDS = 2;
  const MAX_IN_FLIGHT = 500;
  const BATCH = 1000;
  await produce(redis, n.input, {
    count: COUNT,
    keys: 1000,
    seed: 5,
    duplicatePct: 0,
    outOfOrderPct: 0,
    malformedPct: 0,
    startTs: 1_700_000_000_000,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    encoding: 'msgpack',
  });
  const p = await startPipeline(
    pipelineConfig(n, {
      shards: SHARDS,
      batchSize: BATCH,
      stages: [{ dedup: { ttl: '1m' } }],
      extra: { maxInFlightPerShard: MAX_IN_FLIGHT, commit: { maxEvents: 100, maxDelay: '5ms' } },
    }),
  );
  let maxPending = 0;
  let samples = 0;
  for (;;) {
    const g = await groupState(redis, n.input, n.group);
    maxPending = Math.max(maxPending, g.pending);
    samples++;
    if (g.caughtUp && g.pending === 0 && (g.entriesRead ?? 0) >= COUNT) break;
  }
  expect(await p.stop()).toBe(0);
  // A read happens only while every shard is below the bound, and brings at most one batch more.
  expect(maxPending).toBeLessThanOrEqual(SHARDS * MAX_IN_FLIGHT + BATCH);
  expect(maxPending).toBeGreaterThan(0);
  expect(samples).toBeGreaterThan(10);
});

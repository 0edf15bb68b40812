/**
 * `source.trim`: the input is trimmed while the pipeline runs, but never below an entry another group on
 * the same stream still has pending or has not read yet.
 */
import { expect, it } from 'vitest';
import { trimSafely } from '../src/source/trim.js';
import { produce } from '../src/tools/produce/producer.js';
import { parseMetrics, sumOf } from './helpers/metricsText.js';
import {
  httpGet,
  pipelineConfig,
  readStream,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { waitFor } from './helpers/redis.js';

useTestHooks();

it('trims only entries that every group has read and acked', async () => {
  const n = testNames('trim');
  await produce(redis, n.input, {
    count: 5000,
    keys: 50,
    seed: 51,
    duplicatePct: 0,
    outOfOrderPct: 0,
    malformedPct: 0,
    startTs: 1_700_000_000_000,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    encoding: 'msgpack',
  });
  const ids = (await readStream(redis, n.input)).map((e) => e.id);
  // another group on the same stream: it read 1000 entries and acked all but the 500th
  await redis.xgroup('CREATE', n.input, 'other', '0');
  await redis.xreadgroup('GROUP', 'other', 'c', 'COUNT', 1000, 'STREAMS', n.input, '>');
  await redis.xack(n.input, 'other', ...ids.slice(0, 1000).filter((_, i) => i !== 499));

  const config = JSON.parse(pipelineConfig(n, { shards: 2 })) as { source: Record<string, unknown> };
  config.source.trim = { every: '100ms' };
  const p = await startPipeline(JSON.stringify(config));
  await waitForDrain(redis, { stream: n.input, group: n.group, outputs: { [n.sink]: 5000 } });
  const trimmed = async () =>
    sumOf(
      parseMetrics((await httpGet(p.metricsPort, '/metrics')).body).samples,
      'streamshard_input_entries_trimmed_total',
    ) ?? 0;
  await waitFor('a trim ran', async () => (await trimmed()) > 0);
  // the other group's pending entry (the 500th) is the floor: it and everything after it are kept
  const kept = (await readStream(redis, n.input)).map((e) => e.id);
  expect(kept).toEqual(ids.slice(ids.length - kept.length));
  expect(kept.length).toBeGreaterThanOrEqual(5000 - 499);
  expect(kept.length).toBeLessThan(5000); // something below the floor went (whole stream nodes)

  // once the other group acks it and reads on to the 3000th entry, the floor moves there
  await redis.xack(n.input, 'other', ids[499] as string);
  await redis.xreadgroup('GROUP', 'other', 'c', 'COUNT', 2000, 'STREAMS', n.input, '>');
  await redis.xack(n.input, 'other', ...ids.slice(1000, 3000));
  await waitFor('trimmed up to the new floor', async () => (await redis.xlen(n.input)) <= 2100);
  const after = (await readStream(redis, n.input)).map((e) => e.id);
  expect(after.length).toBeGreaterThanOrEqual(2000);
  expect(after).toEqual(ids.slice(ids.length - after.length));
  expect(await p.stop()).toBe(0);

  // with no group on the stream nothing is trimmed (nobody said what is done)
  await redis.xgroup('DESTROY', n.input, 'other');
  await redis.xgroup('DESTROY', n.input, n.group);
  expect(await trimSafely(redis, n.input)).toEqual({ floor: '', trimmed: 0 });
});

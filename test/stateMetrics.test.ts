/**
 * The state gauges and log lines of a running pipeline: per-shard stream time, open windows and dedup
 * IDs agree with what `streamshard status` reads from the checkpoint (src/inspect/checkpoint.ts, which
 * restores the checkpoint as a restart would); lag seconds and stream lengths agree with Redis; the
 * checkpoint's size is measured; a `stats` line comes while events flow and the `stopped` line carries the totals.
 */
import { expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { shardStates } from '../src/inspect/checkpoint.js';
import { redisTimeMs } from '../src/inspect/streams.js';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { produce } from '../src/tools/produce/producer.js';
import { parseMetrics, type Sample } from './helpers/metricsText.js';
import {
  httpGet,
  pipelineConfig,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { waitFor } from './helpers/redis.js';

useTestHooks();

const P = 'streamshard_';
const COUNT = 20_000;

function gauge(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find(
    (s) => s.name === P + name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

it('exports stream time, open windows and dedup IDs per shard as status reads them; lag, lengths and checkpoint size', async () => {
  const n = testNames('state-metrics');
  await produce(redis, n.input, {
    count: COUNT,
    keys: 200,
    seed: 7,
    duplicatePct: 5,
    outOfOrderPct: 10,
    malformedPct: 2,
    startTs: Date.now() - 60_000,
    intervalMs: 1,
    outOfOrderMaxMs: 2000,
    encoding: 'msgpack',
  });
  const shards = 3;
  const text = pipelineConfig(n, {
    shards,
    stages: [
      { dedup: { ttl: '1h', maxEntries: 100_000 } },
      // windows far longer than the input: they stay open, so there is something to count
      { window: { size: '1h', grace: '1h', aggregates: [{ fn: 'count' }] } },
    ],
    extra: { metrics: { port: 0, host: '127.0.0.1', statsEvery: '200ms' } },
  });
  const p = await startPipeline(text);
  const drained = await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {} });
  expect(drained.done).toBe(true);

  const config = parseConfig(text, 'test', { env: { ...process.env } });
  const keys = CheckpointKeys.of(config);
  let got: unknown = null;
  let want: unknown = null;
  await waitFor(
    'the gauges to agree with the checkpoint and with Redis',
    async () => {
      const { shards: states } = await shardStates(redis, keys, config, await redisTimeMs(redis));
      const samples = parseMetrics((await httpGet(p.metricsPort, '/metrics')).body).samples;
      const lengths = {
        input: await redis.xlen(n.input),
        output: await redis.xlen(n.sink),
        dead_letter: await redis.xlen(n.dlq),
      };
      want = {
        perShard: states.map((s) => [
          s.streamTime === null ? null : s.streamTime / 1000,
          s.openWindows,
          s.dedupIds,
        ]),
        lagSeconds: 0,
        lengths,
      };
      got = {
        perShard: states.map((s) => {
          const l = { shard: String(s.shard) };
          const t = gauge(samples, 'shard_stream_time_seconds', l);
          return [
            t === undefined || Number.isNaN(t) ? null : t,
            gauge(samples, 'open_windows', l),
            gauge(samples, 'dedup_ids', l),
          ];
        }),
        lagSeconds: gauge(samples, 'lag_seconds'),
        lengths: {
          input: gauge(samples, 'stream_length', { stream: 'input' }),
          output: gauge(samples, 'stream_length', { stream: 'output' }),
          dead_letter: gauge(samples, 'stream_length', { stream: 'dead_letter' }),
        },
      };
      return JSON.stringify(got) === JSON.stringify(want);
    },
    20_000,
  ).catch(() => {});
  expect(got).toEqual(want);
  const perShard = (want as { perShard: Array<[number | null, number, number]> }).perShard;
  expect(perShard.every(([t, windows, ids]) => t !== null && windows > 0 && ids > 0)).toBe(true);

  const samples = parseMetrics((await httpGet(p.metricsPort, '/metrics')).body).samples;
  expect(gauge(samples, 'checkpoint_bytes')).toBeGreaterThan(0);
  const behind = gauge(samples, 'shard_stream_time_lag_seconds', { shard: '0' }) as number;
  expect(behind).toBeGreaterThan(0); // the events are a minute old

  await waitFor('a stats line', async () =>
    p.logs().some((l) => l.includes('"msg":"stats"') && !l.includes('"eventsPerSecond":0,')),
  );
  expect(await p.stop('SIGTERM')).toBe(0);
  const summary = p
    .logs()
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((r) => r.msg === 'stopped');
  expect(summary).toMatchObject({ clean: true, eventsRead: COUNT, eventsAcked: COUNT });
});

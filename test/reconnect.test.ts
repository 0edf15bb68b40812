/**
 * Redis restarts under a running pipeline: it reports not-ready while Redis is gone, reconnects by
 * itself, and goes on processing; the whole output equals the reference. Uses a private redis-server
 * with AOF (`appendfsync always`) so that the restart keeps the stream, the group and the checkpoint.
 */
import type { Redis } from 'ioredis';
import { Redis as Client } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type LocalRedis, startLocalRedis } from '../src/tools/localRedis.js';
import { produce } from '../src/tools/produce/producer.js';
import { expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import {
  httpGet,
  pipelineConfig,
  startPipeline,
  stopAllPipelines,
  testNames,
  waitForDrain,
} from './helpers/pipeline.js';
import { waitFor } from './helpers/redis.js';

let server: LocalRedis;
let redis: Redis;
beforeAll(async () => {
  server = await startLocalRedis({ appendOnly: true });
  redis = new Client(server.url, { protocol: 2, enableAutoPipelining: false, maxRetriesPerRequest: null });
  redis.on('error', () => {}); // refused connections while the server restarts are expected
});
afterEach(stopAllPipelines);
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

const batch = (seed: number, startTs: number) => ({
  count: 5000,
  keys: 500,
  seed,
  duplicatePct: 5,
  outOfOrderPct: 5,
  malformedPct: 1,
  startTs,
  intervalMs: 1,
  outOfOrderMaxMs: 1500,
  encoding: 'msgpack' as const,
});

it('reconnects after a Redis restart and loses nothing', async () => {
  const n = testNames('reconnect');
  const config = pipelineConfig(n, {
    shards: 2,
    stages: [
      { dedup: { ttl: '1m' } },
      {
        window: { size: '1s', grace: '200ms', idleClose: '1s', aggregates: [{ fn: 'sum', field: 'amount' }] },
      },
    ],
  });
  const p = await startPipeline(config, { REDIS_URL: server.url });
  await produce(redis, n.input, batch(1, 1_700_000_000_000));
  await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {} });

  const restarting = server.restart(1500);
  // while Redis is down, /readyz says so; then it is ready again by itself
  await waitFor(
    'not ready while Redis is down',
    async () => (await httpGet(p.metricsPort, '/readyz')).status === 503,
  );
  await restarting;
  // a restarted Redis (new run_id) may have lost writes: the leader reloads its state from it, then is
  // ready again by itself
  await waitFor('the leader reloads', async () =>
    p.logs().some((l) => l.includes('reloading all state from Redis')),
  );
  // A new run_id says Redis restarted, not that it lost anything (with `appendfsync always` it did not):
  // "lost acknowledged writes" is only for what the continuity check proves.
  expect(p.logs().filter((l) => l.includes('lost acknowledged'))).toEqual([]);
  expect(p.logs().some((l) => l.includes('Redis restarted or failed over (run_id'))).toBe(true);
  await waitFor(
    'ready again after the restart',
    async () => (await httpGet(p.metricsPort, '/readyz')).status === 200,
  );
  expect(p.logs().some((l) => l.includes('redis connection lost'))).toBe(true);

  // An hour later in event time: while the pipeline idles (restart, produce), idle close lets its stream
  // time follow the wall clock, which the oracle cannot model; a gap of an hour keeps that from making
  // any of these events late, so the output stays exactly predictable.
  await produce(redis, n.input, batch(2, 1_700_003_600_000));
  const expected = await expectedFor(redis, n, config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(await p.stop()).toBe(0);
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
  await expectOutputsMatch(redis, n, expected, 'windows');
});

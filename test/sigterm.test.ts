/**
 * SIGTERM while a 200k backlog is being processed: the process stops reading, commits what it has in
 * flight and exits 0 within the shutdown timeout, leaving nothing pending; a restart finishes the job and
 * the final output equals the oracle's.
 */
import { expect, it } from 'vitest';
import { produce } from '../src/tools/produce/producer.js';
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
import { waitFor } from './helpers/redis.js';

useTestHooks();

const COUNT = 200_000;
const SHUTDOWN_MS = 10_000;

it('drains and exits 0 on SIGTERM; a restart completes the output exactly', async () => {
  const n = testNames('sigterm');
  await produce(redis, n.input, {
    count: COUNT,
    keys: 200,
    seed: 41,
    duplicatePct: 3,
    outOfOrderPct: 5,
    malformedPct: 1,
    startTs: 1_700_000_000_000,
    intervalMs: 0.5,
    outOfOrderMaxMs: 2000,
    encoding: 'msgpack',
  });
  const config = pipelineConfig(n, {
    shards: 2,
    stages: [
      { filter: { where: [{ field: 'type', op: 'in', value: ['order', 'refund'] }] } },
      { dedup: { ttl: '2s', maxEntries: 10_000 } },
      {
        window: {
          type: 'hopping',
          size: '2s',
          advance: '1s',
          grace: '300ms',
          idleClose: '2s',
          aggregates: [{ fn: 'sum', field: 'amount' }],
        },
      },
    ],
    extra: { shutdown: { timeout: `${SHUTDOWN_MS}ms` } },
  });
  const expected = await expectedFor(redis, n, config);

  const first = await startPipeline(config);
  await waitFor('some of the input read', async () => {
    const g = await groupState(redis, n.input, n.group);
    return g.entriesRead !== null && g.entriesRead >= COUNT / 10;
  });
  // the deadline is the config's shutdown timeout; the extra second covers process exit itself
  const code = await first.stop('SIGTERM', SHUTDOWN_MS + 1000);
  expect(code).toBe(0);
  const afterStop = await groupState(redis, n.input, n.group);
  expect(afterStop.pending).toBe(0); // everything read was committed and acked
  expect(afterStop.caughtUp, 'SIGTERM must arrive mid-load').toBe(false);

  const second = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
    timeoutMs: 120_000,
  });
  expect(await second.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
});

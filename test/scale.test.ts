/**
 * The acceptance run at scale: N generated events (default 100,000 here; `npm run verify:1m` runs
 * 1,000,000) over 10,000 keys with 5% duplicates, 2% out-of-order and 1% malformed entries, through the
 * full stage set (dedup → tumbling window with every aggregate) on 2 shards, via the real CLI. Every
 * output window is compared with the oracle, every dead letter by source ID, and the group must end
 * with everything acked. Prints how long it took and the rate (not asserted: timing is the bench's job).
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

const EVENTS = Number(process.env.STREAMSHARD_VERIFY_EVENTS ?? 100_000);

useTestHooks();

it(
  `${EVENTS} events over 10k keys: output equals the reference, everything acked`,
  { timeout: 900_000 },
  async () => {
    const n = testNames('scale');
    const produced = await produce(redis, n.input, {
      count: EVENTS,
      keys: 10_000,
      seed: 2026,
      duplicatePct: 5,
      outOfOrderPct: 2,
      malformedPct: 1,
      startTs: 1_700_000_000_000,
      intervalMs: 0.1,
      outOfOrderMaxMs: 3000,
      encoding: 'msgpack',
    });
    const config = pipelineConfig(n, {
      shards: 2,
      stages: [
        { dedup: { ttl: '10m', maxEntries: 1_000_000 } },
        {
          window: {
            type: 'tumbling',
            size: '10s',
            grace: '1s',
            idleClose: '1s',
            aggregates: [
              { fn: 'count' },
              { fn: 'sum', field: 'amount' },
              { fn: 'min', field: 'amount' },
              { fn: 'max', field: 'amount' },
              { fn: 'avg', field: 'amount' },
            ],
          },
        },
      ],
    });
    const expected = await expectedFor(redis, n, config);
    expect(expected.counts.deduplicated).toBeGreaterThan(EVENTS * 0.04);
    expect(expected.counts.late).toBeGreaterThan(0);

    const t0 = performance.now();
    const p = await startPipeline(config);
    const state = await waitForDrain(redis, {
      stream: n.input,
      group: n.group,
      outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
      timeoutMs: 600_000,
    });
    const seconds = (performance.now() - t0) / 1000;
    expect(await p.stop()).toBe(0);
    console.log(
      `scale: ${EVENTS} events (${produced.byKind.malformed} malformed, ${produced.byKind.duplicate} duplicates) ` +
        `processed, ${expected.sink.length} windows, ${expected.deadLetters.length} dead letters, in ${seconds.toFixed(1)} s ` +
        `(${Math.round(EVENTS / seconds)} events/s, including the idle close of the last windows)`,
    );
    expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
    expect((await groupState(redis, n.input, n.group)).entriesRead).toBe(EVENTS);
    await expectOutputsMatch(redis, n, expected, 'windows');
  },
);

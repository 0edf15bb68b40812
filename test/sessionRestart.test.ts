/**
 * Session and sliding windows across crashes, and session merging on adversarial orders: a bridging event
 * arriving last, and sessions whose halves were committed before the bridge arrives, then a kill -9 and
 * a restart, then the bridge. Outputs are compared whole with the oracle (test/helpers/reference.ts).
 */
import { encode } from '@msgpack/msgpack';
import { expect, it } from 'vitest';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { produce } from '../src/tools/produce/producer.js';
import { killMidLoad, restartAndCompare } from './helpers/crash.js';
import { expectedFor, expectOutputsMatch } from './helpers/expectations.js';
import {
  pipelineConfig,
  readStream,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { asRecord, pairsOf } from './helpers/reference.js';

useTestHooks();

const T = 1_700_000_000_000;
const aggregates = [
  { fn: 'count' },
  { fn: 'sum', field: 'amount' },
  { fn: 'min', field: 'amount' },
  { fn: 'max', field: 'amount' },
];

async function addAll(stream: string, events: Array<[string, number, number]>): Promise<void> {
  const tx = redis.multi();
  for (const [key, ts, amount] of events) {
    tx.xadd(stream, '*', 'key', key, 'data', Buffer.from(encode({ id: `${key}@${ts}`, ts, amount })));
  }
  await tx.exec();
}

for (const type of ['session', 'sliding'] as const) {
  it(`${type} windows: kill -9 mid-load, restart: output equals the reference`, async () => {
    const n = testNames(`${type}-kill9`);
    const COUNT = type === 'session' ? 150_000 : 60_000;
    await produce(redis, n.input, {
      count: COUNT,
      keys: 200,
      seed: 41,
      duplicatePct: 3,
      outOfOrderPct: 5,
      malformedPct: 1,
      startTs: T,
      intervalMs: 0.5,
      outOfOrderMaxMs: 2000,
      encoding: 'msgpack',
    });
    const window =
      type === 'session'
        ? { type, gap: '120ms', grace: '200ms', idleClose: '2s', aggregates }
        : { type, size: '300ms', grace: '200ms', idleClose: '2s', aggregates };
    const config = pipelineConfig(n, {
      shards: 4,
      stages: [{ dedup: { ttl: '1s', maxEntries: 5000 } }, { window }],
    });
    const expected = await expectedFor(redis, n, config);
    expect(expected.counts.late).toBeGreaterThan(0);
    await killMidLoad(redis, n, config, COUNT);

    await restartAndCompare(redis, n, config, expected, 'windows');
  });
}

it('sessions merge when the bridging event comes last, and across a checkpoint, kill -9 and restart', async () => {
  const n = testNames('session-bridge');
  const GAP = 100;
  const window = { type: 'session', gap: `${GAP}ms`, grace: '2s', aggregates };
  // idle closing off: the halves stay open (and checkpointed) while the pipeline is down
  const config = (idleClose: string) =>
    pipelineConfig(n, { shards: 4, stages: [{ window: { ...window, idleClose } }] });
  // per key three sessions 150 ms apart (further than the gap), then two bridges that merge them all
  const halves: Array<[string, number, number]> = [];
  const bridges = (keys: number[]) =>
    keys.flatMap((i): Array<[string, number, number]> => [
      [`k${i}`, T + i * 7 + 225, 4],
      [`k${i}`, T + i * 7 + 75, 5],
    ]);
  for (let i = 0; i < 40; i++)
    for (const [d, a] of [
      [0, 1],
      [150, 2],
      [300, 3],
    ] as const)
      halves.push([`k${i}`, T + i * 7 + d, a]);
  const early = Array.from({ length: 20 }, (_, i) => i); // bridged in the first run, after their sessions
  const late = Array.from({ length: 20 }, (_, i) => 20 + i); // bridged after the restart
  await addAll(n.input, halves);
  await addAll(n.input, bridges(early));

  const first = await startPipeline(config('0'));
  await waitForDrain(redis, { stream: n.input, group: n.group, outputs: {} });
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  const stored = (await redis.keys(`${keys.ns}:w:*`)).length;
  expect(stored).toBeGreaterThan(0); // the open sessions are in the checkpoint
  await first.kill9();
  expect(await redis.xlen(n.sink)).toBe(0);

  await addAll(n.input, bridges(late));
  const expected = await expectedFor(redis, n, config('300ms'));
  const second = await startPipeline(config('300ms'));
  await waitForDrain(redis, { stream: n.input, group: n.group, outputs: { [n.sink]: 40 } });
  expect(await second.stop()).toBe(0);
  await expectOutputsMatch(redis, n, expected, 'windows');
  // and not only equal to the oracle: one session per key, holding all five events
  const results = (await readStream(redis, n.sink)).map((e) => asRecord(pairsOf(e.fields)));
  expect(results).toHaveLength(40);
  for (const r of results) {
    const i = Number(r.key?.slice(1));
    expect(r).toEqual({
      key: `k${i}`,
      window_start: String(T + i * 7),
      window_end: String(T + i * 7 + 300 + GAP),
      count: '5',
      sum_amount: '15',
      min_amount: '1',
      max_amount: '5',
    });
  }
});

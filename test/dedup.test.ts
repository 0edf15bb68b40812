/**
 * Dedup in event time: a repeated ID within the TTL is dropped, after the TTL it passes again, and the
 * memory holds at most maxEntries IDs (the oldest are forgotten first, so they pass again too).
 */
import { decode, encode } from '@msgpack/msgpack';
import { expect, it } from 'vitest';
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

useTestHooks();

const T = 1_700_000_000_000;
/** [id, ts offset, passes?] — ttl 1s, maxEntries 2, one shard. */
const EVENTS: Array<[string | number, number, boolean]> = [
  ['a', 1000, true], // remembered a@1000
  ['a', 1500, false], // 500 ms later: duplicate (a duplicate does not refresh the memory)
  ['a', 1999, false], // 999 ms: still within the TTL
  ['a', 2000, true], // 1000 ms: TTL over, passes again; a@2000
  ['b', 2100, true], // memory a, b
  ['c', 2200, true], // memory b, c (a forgotten: maxEntries 2)
  ['a', 2300, true], // forgotten → passes; memory c, a
  ['c', 2400, false], // remembered, within the TTL
  ['b', 2500, true], // forgotten → passes; memory a, b
  [7, 100, true], // numeric ID, old event time (stream time stays 2500); memory b, 7
  ['7', 200, false], // the same ID as a string
  ['b', 3400, false], // b@2500: 900 ms
  ['b', 3500, true], // 1000 ms: passes
];

it('drops duplicates within the TTL, passes them after it, bounds the memory', async () => {
  const n = testNames('dedup');
  for (const [i, [id, offset]] of EVENTS.entries()) {
    const body = Buffer.from(encode({ id, ts: T + offset, seq: i + 1 }));
    await redis.xadd(n.input, '*', 'key', `k${i % 3}`, 'data', body);
  }
  const config = pipelineConfig(n, { shards: 1, stages: [{ dedup: { ttl: '1s', maxEntries: 2 } }] });
  const expected = await expectedFor(redis, n, config);
  const passing = EVENTS.flatMap(([, , passes], i) => (passes ? [i + 1] : []));
  expect(expected.counts.deduplicated).toBe(EVENTS.length - passing.length); // the oracle agrees

  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: passing.length },
  });
  expect(await p.stop()).toBe(0);

  const out = await readStream(redis, n.sink);
  const seqs = out.map((e) => (decode(e.fields[3] as Buffer) as { seq: number }).seq).sort((x, y) => x - y);
  expect(seqs).toEqual(passing);
  await expectOutputsMatch(redis, n, expected, 'pass-through');
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
});

/**
 * Per-key order: with 4 shards and 10,000 keys, a pass-through pipeline writes every key's events in
 * their input order (seq 1..n, complete), whatever the interleaving of shards and batches.
 */
import { decode } from '@msgpack/msgpack';
import { expect, it } from 'vitest';
import { produce } from '../src/tools/produce/producer.js';
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

const EVENTS = 60_000;
const KEYS = 10_000;

it('keeps per-key order across 4 shards and 10,000 keys', async () => {
  const n = testNames('order');
  await produce(redis, n.input, {
    count: EVENTS,
    keys: KEYS,
    seed: 7,
    duplicatePct: 0,
    outOfOrderPct: 0,
    malformedPct: 0,
    startTs: 1_700_000_000_000,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    encoding: 'msgpack',
  });
  // small commit batches: many batches per shard in flight at once
  const config = pipelineConfig(n, { shards: 4, extra: { commit: { maxEvents: 250, maxDelay: '20ms' } } });
  const expected = await expectedFor(redis, n, config);
  expect(expected.sink).toHaveLength(EVENTS);

  const p = await startPipeline(config);
  const state = await waitForDrain(redis, { stream: n.input, group: n.group, outputs: { [n.sink]: EVENTS } });
  expect(await p.stop()).toBe(0);

  const seqs = new Map<string, number[]>();
  for (const e of await readStream(redis, n.sink)) {
    const key = e.fields[1]?.toString() as string;
    const body = decode(e.fields[3] as Buffer) as { seq: number };
    let list = seqs.get(key);
    if (!list) {
      list = [];
      seqs.set(key, list);
    }
    list.push(body.seq);
  }
  const broken = [...seqs].filter(([, s]) => s.some((v, i) => v !== i + 1)).slice(0, 5);
  expect(broken).toEqual([]);
  expect(seqs.size).toBeGreaterThan(KEYS * 0.99);
  await expectOutputsMatch(redis, n, expected, 'pass-through');
  expect(state).toMatchObject({ done: true, group: { pending: 0, caughtUp: true } });
});

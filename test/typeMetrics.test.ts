/**
 * `events_processed_total{type, status}`: after a real run, every (type, status) series equals the
 * reference's count from the input, with the label bound applied (listed types keep theirs, the rest are
 * `other`, undecodable events `unknown`); and the bound itself, unit-tested: the first `maxTypes` unlisted
 * types seen keep their label, later ones never get one, and a worker's slots stay bounded.
 */
import { describe, expect, it } from 'vitest';
import { TypeLabels } from '../src/metrics/typeLabels.js';
import { DEAD_LETTERED, OK, TypeCounts } from '../src/shard/typeCounts.js';
import { produce } from '../src/tools/produce/producer.js';
import { expectedFor } from './helpers/expectations.js';
import { parseMetrics } from './helpers/metricsText.js';
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

describe('type label bound', () => {
  it('grants listed types and the first maxTypes others, everything later is other', () => {
    const l = new TypeLabels({ field: 'type', known: ['A'], maxTypes: 2 });
    expect(['B', 'A', 'C', 'D', 'B', 'unknown', 'other', 'C', 'E'].map((t) => l.label(t))).toEqual([
      'B',
      'A',
      'C',
      'other',
      'B',
      'unknown',
      'other',
      'C',
      'other',
    ]);
    expect(new TypeLabels(undefined).label('')).toBe('');
  });

  it('counts per worker slot, bounded: types past known + maxTypes count as other', () => {
    const c = new TypeCounts({ field: 'kind', known: ['x'], maxTypes: 1 });
    for (const kind of ['y', 'z', 'x', 'y', 7, undefined]) {
      c.read({ kind });
      c.count(OK);
    }
    c.unknown();
    c.count(DEAD_LETTERED);
    expect(c.drain()).toEqual([
      ['other', OK, 2], // z and 7: past the bound
      ['unknown', OK, 1], // no kind
      ['unknown', DEAD_LETTERED, 1],
      ['x', OK, 1],
      ['y', OK, 2],
    ]);
    expect(c.drain()).toEqual([]);
  });
});

useTestHooks();

it('every (type, status) series equals the reference after a run', async () => {
  const n = testNames('types');
  await produce(redis, n.input, {
    count: 20_000,
    keys: 100,
    seed: 71,
    duplicatePct: 5,
    outOfOrderPct: 10,
    malformedPct: 3,
    startTs: 1_700_000_000_000,
    intervalMs: 1,
    outOfOrderMaxMs: 2500,
    encoding: 'msgpack',
  });
  const config = pipelineConfig(n, {
    shards: 3,
    stages: [
      { filter: { where: [{ field: 'amount', op: 'gt', value: 50 }] } },
      { dedup: { ttl: '1s', maxEntries: 1000 } },
      { rateLimit: { per: 'key', rate: '20/s', burst: 3 } },
      {
        window: { size: '1s', grace: '200ms', idleClose: '1s', aggregates: [{ fn: 'sum', field: 'amount' }] },
      },
    ],
    extra: {
      metrics: { port: 0, host: '127.0.0.1', eventTypes: { field: 'type', known: ['order'], maxTypes: 0 } },
    },
  });
  const expected = await expectedFor(redis, n, config);
  const want: Record<string, number> = {};
  for (const [type, row] of Object.entries(expected.counts.byType)) {
    const label = type === 'order' || type === 'unknown' ? type : 'other';
    for (const [status, v] of Object.entries(row))
      want[`${label}/${status}`] = (want[`${label}/${status}`] ?? 0) + v;
  }
  // every status and both bounded labels occur, so the comparison below can fail in each of them
  for (const k of [
    'order/ok',
    'order/filtered',
    'order/duplicate',
    'order/rate_limited',
    'order/dead_lettered',
    'other/ok',
    'unknown/dead_lettered',
  ])
    expect(want[k], k).toBeGreaterThan(0);
  expect(Object.values(want).reduce((a, b) => a + b, 0)).toBe(20_000);

  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(state.done).toBe(true);
  let got: Record<string, number> = {};
  try {
    await waitFor(
      'per-type counters equal to the reference',
      async () => {
        got = {};
        const { samples } = parseMetrics((await httpGet(p.metricsPort, '/metrics')).body);
        for (const s of samples.filter((x) => x.name === 'streamshard_events_processed_total'))
          got[`${s.labels.type}/${s.labels.status}`] = s.value;
        return JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(want).sort());
      },
      15_000,
    );
  } catch {
    // the assertion below shows the difference
  }
  expect(Object.fromEntries(Object.entries(got).sort())).toEqual(
    Object.fromEntries(Object.entries(want).sort()),
  );
  expect(await p.stop()).toBe(0);
});

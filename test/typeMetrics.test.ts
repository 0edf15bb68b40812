/**
 * `events_processed_total{type, status}`: after a real run, every (type, status) series equals the
 * reference's count from the input, with the label bound applied (listed types keep theirs, the rest are
 * `other`, undecodable events `unknown`); and the bound itself, unit-tested: the first `maxTypes` unlisted
 * types seen keep their label, later ones never get one, and a worker's slots stay bounded.
 */
import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { TypeLabels } from '../src/metrics/typeLabels.js';
import { DEAD_LETTERED, OK, TypeCounts } from '../src/shard/typeCounts.js';
import { mulberry32 } from '../src/tools/produce/generator.js';
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
      c.read(kind);
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

/**
 * For the order stage: 50 keys with versions 1..400 each, ~2 % never sent (gaps), ~3 % sent twice, locally
 * shuffled (a version moves up to 6 places), ~1 % with no version, types order/refund; then two rounds of
 * events far later in event time (no version) that resolve every gap while input is processed.
 */
async function produceVersions(stream: string): Promise<void> {
  const rnd = mulberry32(73);
  const pipe = redis.pipeline();
  const queues: Array<Array<Record<string, unknown>>> = [];
  for (let k = 0; k < 50; k++) {
    const q: Array<Record<string, unknown>> = [];
    for (let v = 1; v <= 400; v++) {
      const x = rnd();
      const type = rnd() < 0.8 ? 'order' : 'refund';
      if (x < 0.02) continue;
      q.push({ id: `k${k}-${v}`, seq: v, type });
      if (x < 0.05) q.push({ id: `k${k}-${v}`, seq: v, type });
      else if (x < 0.06) q.push({ id: `k${k}-bad${v}`, type });
    }
    for (let i = 0; i < q.length; i++) {
      if (rnd() < 0.3) {
        const j = Math.min(q.length - 1, i + 1 + Math.floor(rnd() * 6));
        [q[i], q[j]] = [q[j] as Record<string, unknown>, q[i] as Record<string, unknown>];
      }
    }
    queues.push(q);
  }
  let n = 0;
  for (;;) {
    const live = queues.map((q, k) => [q, k] as const).filter(([q]) => q.length > 0);
    if (live.length === 0) break;
    const [q, k] = live[Math.floor(rnd() * live.length)] as (typeof live)[number];
    const body = { ...(q.shift() as Record<string, unknown>), ts: T + n++ * 2 };
    pipe.xadd(stream, '*', 'key', `k${k}`, 'data', Buffer.from(encode(body)));
  }
  for (let round = 1; round <= 2; round++) {
    for (let k = 0; k < 50; k++) {
      const body = { id: `flush-${round}-${k}`, type: 'order', ts: T + n * 2 + round * 5000 };
      pipe.xadd(stream, '*', 'key', `k${k}`, 'data', Buffer.from(encode(body)));
    }
  }
  await pipe.exec();
}

const T = 1_700_000_000_000;

async function produceMixed(stream: string): Promise<void> {
  await produce(redis, stream, {
    count: 20_000,
    keys: 100,
    seed: 71,
    duplicatePct: 5,
    outOfOrderPct: 10,
    malformedPct: 3,
    startTs: T,
    intervalMs: 1,
    outOfOrderMaxMs: 2500,
    encoding: 'msgpack',
  });
}

const CASES = [
  {
    name: 'filter, dedup, rate limit, window',
    stages: [
      { filter: { where: [{ field: 'amount', op: 'gt', value: 50 }] } },
      { dedup: { ttl: '1s', maxEntries: 1000 } },
      { rateLimit: { per: 'key', rate: '20/s', burst: 3 } },
      {
        window: { size: '1s', grace: '200ms', idleClose: '1s', aggregates: [{ fn: 'sum', field: 'amount' }] },
      },
    ],
    statuses: ['order/ok', 'order/filtered', 'order/duplicate', 'order/rate_limited', 'order/dead_lettered'],
    input: produceMixed,
    maxTypes: 0, // refund → other
    others: ['other/ok', 'unknown/dead_lettered'],
  },
  {
    name: 'dedup and window only (the type read from a projected msgpack body)',
    stages: [
      { dedup: { ttl: '1s', maxEntries: 1000 } },
      {
        window: { size: '1s', grace: '200ms', idleClose: '1s', aggregates: [{ fn: 'max', field: 'amount' }] },
      },
    ],
    statuses: ['order/ok', 'order/duplicate', 'order/dead_lettered'],
    input: produceMixed,
    maxTypes: 0,
    others: ['other/ok', 'unknown/dead_lettered'],
  },
  {
    name: 'order stage (held events counted when released or given up), pass-through',
    stages: [{ order: { versionPath: 'seq', maxBuffered: 5, timeout: '300ms' } }],
    statuses: ['order/ok', 'order/duplicate', 'order/dead_lettered', 'refund/ok'],
    input: produceVersions,
    maxTypes: 5, // refund keeps its label: the only unlisted type, well within the bound
    others: [],
  },
];

it.each(CASES)('every (type, status) series equals the reference after a run: $name', async (c) => {
  const n = testNames('types');
  await c.input(n.input);

  const config = pipelineConfig(n, {
    shards: 3,
    stages: c.stages,
    extra: {
      metrics: {
        port: 0,
        host: '127.0.0.1',
        eventTypes: { field: 'type', known: ['order'], maxTypes: c.maxTypes },
      },
    },
  });
  const expected = await expectedFor(redis, n, config);
  const want: Record<string, number> = {};
  for (const [type, row] of Object.entries(expected.counts.byType)) {
    const label = type === 'order' || type === 'unknown' || c.maxTypes > 0 ? type : 'other';
    for (const [status, v] of Object.entries(row))
      want[`${label}/${status}`] = (want[`${label}/${status}`] ?? 0) + v;
  }
  // every status and both bounded labels occur, so the comparison below can fail in each of them
  for (const k of [...c.statuses, ...c.others])
    expect(want[k] ?? 0, `${k} in ${JSON.stringify(want)}`).toBeGreaterThan(0);
  // every entry counted once (the order stage's still held at the end: in neither)
  const entries = await redis.xlen(n.input);
  const counted = Object.values(want).reduce((a, b) => a + b, 0);
  expect(counted <= entries && counted > 0.98 * entries, `${counted} of ${entries}`).toBe(true);

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

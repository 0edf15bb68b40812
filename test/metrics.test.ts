/**
 * /metrics after a run: the counters equal the oracle's counts, the histograms and gauges exist with the
 * right types, default process metrics are there under their standard names, build_info names the
 * version; /healthz and /readyz answer 200.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { produce } from '../src/tools/produce/producer.js';
import { expectedFor } from './helpers/expectations.js';
import { parseMetrics, type Sample, sumOf as sum } from './helpers/metricsText.js';
import {
  httpGet,
  pipelineConfig,
  ROOT,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
  waitForDrain,
} from './helpers/pipeline.js';
import { waitFor } from './helpers/redis.js';

describe('metrics text parser', () => {
  it('reads names, labels, escapes and special values', () => {
    const { samples, types } = parseMetrics(
      [
        '# HELP a_total Things.',
        '# TYPE a_total counter',
        'a_total{reason="E_X",path="C:\\\\dir \\"q\\""} 3',
        'b_bucket{le="+Inf"} 7 1700000000000',
        'c NaN',
        'd -Inf',
      ].join('\n'),
    );
    expect(types.get('a_total')).toBe('counter');
    expect(samples[0]).toEqual({ name: 'a_total', labels: { reason: 'E_X', path: 'C:\\dir "q"' }, value: 3 });
    expect(samples[1]).toEqual({ name: 'b_bucket', labels: { le: '+Inf' }, value: 7 });
    expect(samples[2]?.value).toBeNaN();
    expect(samples[3]?.value).toBe(Number.NEGATIVE_INFINITY);
  });
});

useTestHooks();

const P = 'streamshard_';
const COUNT = 20_000;

it('counts what the oracle counts and exposes histograms, gauges and process metrics', async () => {
  const n = testNames('metrics');
  await produce(redis, n.input, {
    count: COUNT,
    keys: 100,
    seed: 51,
    duplicatePct: 5,
    outOfOrderPct: 10,
    malformedPct: 3,
    startTs: 1_700_000_000_000,
    intervalMs: 1,
    outOfOrderMaxMs: 2500,
    encoding: 'msgpack',
  });
  const config = pipelineConfig(n, {
    shards: 2,
    stages: [
      { filter: { where: [{ field: 'type', op: 'eq', value: 'order' }] } },
      { dedup: { ttl: '1s', maxEntries: 1000 } },
      {
        window: { size: '1s', grace: '200ms', idleClose: '1s', aggregates: [{ fn: 'sum', field: 'amount' }] },
      },
    ],
  });
  const expected = await expectedFor(redis, n, config);
  const c = expected.counts;
  expect(c.deduplicated * c.late * c.filtered).toBeGreaterThan(0);

  const p = await startPipeline(config);
  expect((await httpGet(p.metricsPort, '/healthz')).status).toBe(200);
  expect((await httpGet(p.metricsPort, '/readyz')).status).toBe(200);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(state.done).toBe(true);

  const want: Record<string, number> = {
    [`${P}events_read_total`]: COUNT,
    [`${P}events_acked_total`]: COUNT,
    [`${P}events_filtered_total`]: c.filtered,
    [`${P}events_deduplicated_total`]: c.deduplicated,
    [`${P}events_late_total`]: c.late,
    [`${P}events_dead_lettered_total`]: Object.values(c.deadLettered).reduce((a, b) => a + (b ?? 0), 0),
    [`${P}windows_emitted_total`]: c.windowsEmitted,
  };
  for (const [reason, v] of Object.entries(c.deadLettered))
    want[`${P}events_dead_lettered_total/${reason}`] = v;
  const read = (samples: Sample[]) => {
    const got: Record<string, number | undefined> = {};
    for (const name of Object.keys(want)) {
      const [metric, reason] = name.split('/') as [string, string | undefined];
      got[name] = sum(samples, metric, reason ? { reason } : {});
    }
    return got;
  };
  // counters are updated after each commit: poll until they settle on the expected values
  let last: Record<string, number | undefined> = {};
  try {
    await waitFor(
      'counters equal to the oracle',
      async () => {
        last = read(parseMetrics((await httpGet(p.metricsPort, '/metrics')).body).samples);
        return JSON.stringify(last) === JSON.stringify(want);
      },
      15_000,
    );
  } catch {
    // fall through: the assertion below shows the difference
  }
  expect(last).toEqual(want);

  const { samples, types } = parseMetrics((await httpGet(p.metricsPort, '/metrics')).body);
  const names = new Set(samples.map((s) => s.name));
  for (const counter of Object.keys(want).filter((k) => !k.includes('/'))) {
    expect(types.get(counter) ?? types.get(counter.replace(/_total$/, '')), counter).toBe('counter');
  }
  for (const h of ['batch_size', 'processing_seconds', 'end_to_end_latency_seconds', 'commit_seconds']) {
    expect(types.get(P + h), h).toBe('histogram');
    for (const suffix of ['_bucket', '_sum', '_count'])
      expect(names.has(P + h + suffix), h + suffix).toBe(true);
    expect(sum(samples, `${P + h}_count`), `${h}_count`).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === `${P + h}_bucket` && s.labels.le === '+Inf')).toBe(true);
  }
  for (const g of [
    'consumer_group_pending',
    'consumer_group_lag',
    'shard_in_flight_events',
    'worker_utilization',
    'shard_heap_used_bytes',
    'shard_heap_size_bytes',
  ]) {
    expect(types.get(P + g), g).toBe('gauge');
    expect(names.has(P + g), g).toBe(true);
  }
  // Each worker has answered at least one batch: its heap (a V8 isolate is several MB) is reported.
  for (const s of samples.filter((x) => x.name === `${P}shard_heap_used_bytes`)) {
    expect(s.value, `heap of shard ${s.labels.shard}`).toBeGreaterThan(1e6);
  }
  expect(sum(samples, `${P}shard_heap_size_bytes`)).toBeGreaterThan(
    sum(samples, `${P}shard_heap_used_bytes`) ?? 0,
  );
  expect(sum(samples, `${P}consumer_group_pending`)).toBe(0);
  expect(sum(samples, `${P}consumer_group_lag`)).toBe(0);
  // Node.js and process metrics under their standard names, not under the pipeline's prefix
  for (const name of [
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_heap_size_used_bytes',
    'nodejs_active_handles',
  ]) {
    expect(names.has(name), name).toBe(true);
  }
  expect([...names].filter((x) => x.startsWith(`${P}process_`) || x.startsWith(`${P}nodejs_`))).toEqual([]);
  // gauges named like counters are left out (promtool rejects them); their sum by type stays
  expect(names.has('nodejs_active_handles_total')).toBe(false);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  expect(samples.filter((s) => s.name === `${P}build_info`)).toEqual([
    { name: `${P}build_info`, labels: { version: pkg.version, node: process.versions.node }, value: 1 },
  ]);
  expect(types.get(`${P}build_info`)).toBe('gauge');

  expect((await httpGet(p.metricsPort, '/healthz')).status).toBe(200);
  expect((await httpGet(p.metricsPort, '/readyz')).status).toBe(200);
  expect(await p.stop()).toBe(0);
});

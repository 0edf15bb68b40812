/**
 * A real Prometheus (Debian's `prometheus`, own port and data directory, 1 s scrapes) scrapes a running
 * pipeline while events keep arriving, and its HTTP API answers what the deploy/ files ask of it: a rate
 * of read events above 0, the alerting rules of deploy/prometheus/rules.yaml loaded and evaluated without
 * error, every query of the Grafana dashboard accepted (and, unless it needs a planned metric, answered
 * with data), the dashboard's `job` variable filled, and the PromQL examples of docs/metrics.md accepted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { produce } from '../src/tools/produce/producer.js';
import {
  pipelineConfig,
  ROOT,
  type RunningPipeline,
  redis,
  startPipeline,
  testNames,
  useTestHooks,
} from './helpers/pipeline.js';
import {
  dashboardExprs,
  metricNames,
  PLANNED_METRICS,
  type RunningPrometheus,
  ruleExprs,
  startPrometheus,
} from './helpers/prometheus.js';
import { waitFor } from './helpers/redis.js';

useTestHooks();

const n = testNames('prometheus');
let pipeline: RunningPipeline;
let prometheus: RunningPrometheus;
let seed = 1;

/** Adds 100 events stamped now (3 % malformed, so that dead letters have series too). */
async function someEvents(): Promise<void> {
  await produce(redis, n.input, {
    count: 100,
    keys: 20,
    seed: seed++,
    duplicatePct: 0,
    outOfOrderPct: 0,
    outOfOrderMaxMs: 0,
    malformedPct: 3,
    startTs: Date.now(),
    intervalMs: 1,
    encoding: 'msgpack',
  });
}

beforeAll(async () => {
  await someEvents();
  pipeline = await startPipeline(
    pipelineConfig(n, {
      shards: 2,
      stages: [{ window: { size: '1s', grace: '100ms', idleClose: '500ms', aggregates: [{ fn: 'count' }] } }],
    }),
  );
  prometheus = await startPrometheus({
    targets: [`127.0.0.1:${pipeline.metricsPort}`],
    job: 'streamshard',
    interval: '1s',
    ruleFiles: [join(ROOT, 'deploy/prometheus/rules.yaml')],
  });
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  if (pipeline?.running()) expect(await pipeline.stop()).toBe(0);
});

it('scrapes the pipeline and reports a rate of read events above 0 while events arrive', async () => {
  const rate = await waitFor(
    'rate(streamshard_events_read_total[5s]) > 0 in Prometheus',
    async () => {
      await someEvents();
      const result = await prometheus.query(
        'sum(rate(streamshard_events_read_total{job="streamshard"}[5s]))',
      );
      const value = Number(result[0]?.value[1] ?? 0);
      return value > 0 ? value : undefined;
    },
    60_000,
  );
  expect(rate).toBeGreaterThan(0);
  const target = `127.0.0.1:${pipeline.metricsPort}`;
  const up = await prometheus.query('up{job="streamshard"}');
  expect(up.map((x) => x.metric.instance)).toEqual([target]);
  // the last scrape may have failed on a busy machine (up 0, series stale): wait for a good one
  await waitFor(
    'a scrape that finds the leader',
    async () =>
      (await prometheus.query('up{job="streamshard"} == 1')).length === 1 &&
      (await prometheus.query('streamshard_leader == 1')).length === 1,
    30_000,
  );
});

it('loads deploy/prometheus/rules.yaml and evaluates every rule without error', async () => {
  const expected = ruleExprs().map((r) => r.alert);
  type Rule = { name: string; health: string; lastError?: string; lastEvaluation: string };
  const rules = await waitFor(
    'every rule evaluated',
    async () => {
      const data = await prometheus.api<{ groups: Array<{ rules: Rule[] }> }>('rules');
      const all = data.groups.flatMap((g) => g.rules);
      return all.length === expected.length && all.every((r) => r.health !== 'unknown') ? all : undefined;
    },
    30_000,
  );
  expect(rules.map((r) => r.name).sort()).toEqual([...expected].sort());
  for (const r of rules)
    expect({ rule: r.name, health: r.health, error: r.lastError ?? '' }).toEqual({
      rule: r.name,
      health: 'ok',
      error: '',
    });
  // a healthy pipeline: nothing fires (alerts that need time to fire have had none; the others must not)
  const alerts = await prometheus.api<{ alerts: Array<{ labels: { alertname: string }; state: string }> }>(
    'alerts',
  );
  expect(alerts.alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname)).toEqual([]);
});

it('answers every query of the Grafana dashboard, with data unless it needs a planned metric', async () => {
  const queries = dashboardExprs().filter((e) => !e.startsWith('label_values('));
  expect(queries.length).toBeGreaterThan(30);
  const planned = (expr: string) => metricNames(expr).some((m) => PLANNED_METRICS.includes(m));
  const concrete = (expr: string) =>
    expr.replaceAll('$job', 'streamshard').replaceAll('$__rate_interval', '5s');
  for (const expr of queries) expect(concrete(expr), expr).not.toContain('$');
  // A scrape that fails (the machine is busy) marks every series stale until the next one: gauges read
  // empty meanwhile. So ask until one round of queries finds data for all (or time runs out).
  let empty: string[] = [];
  let rejected: string[] = [];
  await waitFor(
    'data for every dashboard query',
    async () => {
      empty = [];
      rejected = [];
      for (const expr of queries) {
        const result = await prometheus.query(concrete(expr)).catch((e: Error) => {
          rejected.push(`${expr}: ${e.message}`);
          return null;
        });
        if (result?.length === 0 && !planned(expr)) empty.push(expr);
      }
      return empty.length === 0 && rejected.length === 0;
    },
    30_000,
  ).catch(() => undefined); // the assertions below say what is missing
  expect(rejected).toEqual([]);
  expect(empty).toEqual([]);
  const jobs = await prometheus.api<string[]>('label/job/values', { 'match[]': 'streamshard_build_info' });
  expect(jobs).toEqual(['streamshard']);
});

it('accepts the PromQL examples of docs/metrics.md', async () => {
  const docs = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8');
  const examples = [...docs.matchAll(/```promql\n([\s\S]*?)```/g)].flatMap((m) =>
    (m[1] as string)
      .split(/\n\s*\n/)
      .map((e) => e.trim())
      .filter((e) => e !== ''),
  );
  expect(examples.length).toBeGreaterThan(5);
  for (const expr of examples) await prometheus.query(expr);
});

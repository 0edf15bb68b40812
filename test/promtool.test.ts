/**
 * promtool on what we ship: `check metrics` on a running pipeline's /metrics (after a run that filled
 * every family: windows, duplicates, late events, dead letters), `check rules` and `test rules` on
 * deploy/prometheus/rules.yaml, `check config` on deploy/prometheus/prometheus.yml. And the names: every
 * metric the rules and the dashboard use is exported (or one of the planned engine gauges), and every
 * exported family of our own is documented in docs/metrics.md with its type.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { produce } from '../src/tools/produce/producer.js';
import { expectedFor } from './helpers/expectations.js';
import { parseMetrics } from './helpers/metricsText.js';
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
import { dashboardExprs, metricNames, PLANNED_METRICS, promtool, ruleExprs } from './helpers/prometheus.js';

useTestHooks();

const PROMETHEUS_DIR = join(ROOT, 'deploy/prometheus');
const P = 'streamshard_';

/** The /metrics text of a pipeline that has processed a mixed input, and the families it declares. */
let scrape = '';
let families = new Map<string, string>();

beforeAll(async () => {
  const n = testNames('promtool');
  await produce(redis, n.input, {
    count: 5000,
    keys: 50,
    seed: 7,
    duplicatePct: 5,
    outOfOrderPct: 10,
    outOfOrderMaxMs: 3000,
    malformedPct: 3,
    startTs: 1_700_000_000_000,
    intervalMs: 2,
    encoding: 'msgpack',
  });
  const config = pipelineConfig(n, {
    shards: 2,
    stages: [
      { dedup: { ttl: '1s', maxEntries: 1000 } },
      { window: { size: '1s', grace: '200ms', idleClose: '1s', aggregates: [{ fn: 'count' }] } },
    ],
  });
  const expected = await expectedFor(redis, n, config);
  const p = await startPipeline(config);
  const state = await waitForDrain(redis, {
    stream: n.input,
    group: n.group,
    outputs: { [n.sink]: expected.sink.length, [n.dlq]: expected.deadLetters.length },
  });
  expect(state.done).toBe(true);
  scrape = (await httpGet(p.metricsPort, '/metrics')).body;
  families = parseMetrics(scrape).types;
  expect(await p.stop()).toBe(0);
}, 120_000);

describe('promtool check metrics', () => {
  it('finds nothing to report on /metrics of a pipeline that has run', async () => {
    expect(scrape).toContain(`${P}events_dead_lettered_total{reason="E_LATE"}`);
    const r = await promtool(['check', 'metrics'], { stdin: scrape });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.code).toBe(0);
  });

  it('would report a gauge named like a counter (the check is real)', async () => {
    const bad = '# HELP x_total A gauge.\n# TYPE x_total gauge\nx_total 1\n';
    const r = await promtool(['check', 'metrics'], { stdin: bad });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('non-counter metrics should not have "_total" suffix');
  });
});

describe('deploy/prometheus', () => {
  it('rules.yaml passes promtool check rules', async () => {
    const r = await promtool(['check', 'rules', 'rules.yaml'], { cwd: PROMETHEUS_DIR });
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('rules.yaml passes its unit tests (promtool test rules rules.test.yaml)', async () => {
    const r = await promtool(['test', 'rules', 'rules.test.yaml'], { cwd: PROMETHEUS_DIR });
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('rules.test.yaml tests every alert of rules.yaml, firing', () => {
    const alerts = ruleExprs().map((r) => r.alert);
    const tests = parseYaml(readFileSync(join(PROMETHEUS_DIR, 'rules.test.yaml'), 'utf8')) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const firing = new Set(
      tests.tests.flatMap((t) =>
        t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
      ),
    );
    expect([...alerts].sort()).toEqual([...firing].sort());
  });

  it('prometheus.yml (the compose scrape config) passes promtool check config', async () => {
    const r = await promtool(['check', 'config', 'prometheus.yml'], { cwd: PROMETHEUS_DIR });
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
  });
});

describe('metric names', () => {
  it('every metric the rules, the dashboard and the docs query is exported or planned', () => {
    const known = new Set([...families.keys(), ...PLANNED_METRICS]);
    const unknown = (exprs: string[]) =>
      [...new Set(exprs.flatMap(metricNames))].filter(
        (name) => !known.has(name) && !known.has(name.replace(/_(bucket|sum|count)$/, '')),
      );
    expect(unknown(ruleExprs().map((r) => r.expr))).toEqual([]);
    expect(unknown(dashboardExprs())).toEqual([]);
    const docs = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8');
    expect(unknown([...docs.matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1] as string))).toEqual([]);
  });

  it('every family of our own is documented in docs/metrics.md with its type, and the planned ones too', () => {
    const docs = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8');
    const documented = new Map(
      [...docs.matchAll(/^\| `(streamshard_[a-z0-9_]+)`\s*\| (counter|gauge|histogram)\s*\|/gm)].map(
        (m) => [m[1] as string, m[2] as string] as const,
      ),
    );
    const own = [...families].filter(([name]) => name.startsWith(P));
    expect(own.length).toBeGreaterThan(25);
    for (const [name, type] of own) expect(documented.get(name), name).toBe(type);
    for (const name of PLANNED_METRICS) expect(documented.has(name), name).toBe(true);
  });
});

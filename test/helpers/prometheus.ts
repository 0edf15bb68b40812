/**
 * Prometheus's own tools for tests, from Debian's `prometheus` package (`.ci/run` installs it):
 * `promtool` as a command, and a real `prometheus` server on a free loopback port with its own data
 * directory and a generated configuration.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ROOT } from './pipeline.js';
import { waitFor } from './redis.js';

const INSTALL_HINT = "install Debian's prometheus package (apt-get install prometheus); .ci/run does";

/** The absolute path of `name` on PATH (or /usr/bin); throws with the install hint when missing. */
export function tool(name: 'promtool' | 'prometheus'): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin'].filter((d) => d !== '');
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  throw new Error(`${name} not found: ${INSTALL_HINT}`);
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool with `args` (and `stdin`, if given); never rejects on a non-zero exit. */
export function promtool(
  args: string[],
  opts: { stdin?: string; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      tool('promtool'),
      args,
      { cwd: opts.cwd, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(opts.stdin ?? '');
  });
}

export interface RunningPrometheus {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** GET `/api/v1/<path>` with `params`; the parsed `data` of a success, else throws with the error. */
  api<T>(path: string, params?: Record<string, string>): Promise<T>;
  /** Runs an instant query; its result vector. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  logs(): string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** `host:port` targets of the one scrape job. */
  targets: string[];
  job?: string;
  /** Scrape and rule evaluation interval, e.g. `500ms`. */
  interval: string;
  ruleFiles?: string[];
}

/** A free loopback port (bound, then released for the server to take). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Starts `prometheus` scraping `targets`; resolves once it answers /-/ready. */
export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'streamshard-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    JSON.stringify({
      global: {
        scrape_interval: opts.interval,
        scrape_timeout: opts.interval,
        evaluation_interval: opts.interval,
      },
      rule_files: opts.ruleFiles ?? [],
      scrape_configs: [{ job_name: opts.job ?? 'streamshard', static_configs: [{ targets: opts.targets }] }],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    tool('prometheus'),
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const api = async <T>(path: string, params: Record<string, string> = {}): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success')
      throw new Error(`${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
    return body.data;
  };
  try {
    await waitFor(
      'prometheus ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}:\n${stderr}`);
        return (await fetch(`${url}/-/ready`)).status === 200;
      },
      30_000,
    );
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\nprometheus stderr:\n${stderr}`, { cause: e });
  }
  return {
    url,
    api,
    query: async (expr) =>
      (
        await api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>('query', {
          query: expr,
        })
      ).result,
    logs: () => stderr,
    stop,
  };
}

/**
 * Metrics that deploy/ (dashboard, rules) and docs/metrics.md already use but that the engine does not
 * export yet (they need its data): tests accept these names where they do not find them in a scrape.
 */
export const PLANNED_METRICS: string[] = [];

/** Metric names (`streamshard_*`, `process_*`, `nodejs_*`) that a PromQL expression mentions. */
export function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:streamshard|process|nodejs)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1] as string);
}

/** The alerting rules of deploy/prometheus/rules.yaml. */
export function ruleExprs(): Array<{ alert: string; expr: string }> {
  const rules = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/rules.yaml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
  };
  return rules.groups.flatMap((g) => g.rules);
}

/** Every query of deploy/grafana/streamshard.json (panel targets and template variables). */
export function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/streamshard.json'), 'utf8')) as {
    panels: Array<{ targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ definition?: string }> };
  };
  return [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dash.templating.list.flatMap((v) => (v.definition ? [v.definition] : [])),
  ];
}

/**
 * `streamshard demo`: the whole product in one command on a fresh machine. Starts a private redis-server
 * (unless REDIS_URL is set; installs Debian's package when missing and running as root), produces
 * synthetic orders (with duplicates, out-of-order and malformed events), runs `config/orders-tumbling.yaml`
 * on them, waits until everything is committed and every window has closed, prints the results, and stops.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { Pipeline } from '../pipeline/pipeline.js';
import { connectRedis, redactUrl } from '../redis/connect.js';
import { type LocalRedis, startLocalRedis } from '../tools/localRedis.js';
import { produce } from '../tools/produce/producer.js';
import { sleep } from '../util/backoff.js';

const EXAMPLE = fileURLToPath(new URL('../../../config/orders-tumbling.yaml', import.meta.url));

interface DemoOptions {
  events: string;
  keys: string;
  keep?: boolean;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('start a private Redis, produce events, run config/orders-tumbling.yaml, print the results')
    .option('--events <n>', 'events to produce', '50000')
    .option('--keys <n>', 'distinct keys (customers)', '500')
    .option('--keep', 'keep running after the results (metrics stay up) until Ctrl-C')
    .action(async (o: DemoOptions) => {
      process.exitCode = await demo(o);
    });
}

const say = (line: string) => process.stdout.write(`${line}\n`);

async function demo(o: DemoOptions): Promise<number> {
  const events = Number(o.events);
  const keys = Number(o.keys);
  if (!Number.isInteger(events) || events < 1 || !Number.isInteger(keys) || keys < 1) {
    process.stderr.write('--events and --keys take positive integers\n');
    return 2;
  }
  let local: LocalRedis | null = null;
  let url = process.env.REDIS_URL;
  if (url === undefined || url === '') {
    say('▶ starting a private redis-server (set REDIS_URL to use your own)…');
    local = await startLocalRedis({ log: (m) => say(`  ${m}`) });
    url = local.url;
    say(`  redis at ${url}`);
  }
  const run = randomBytes(3).toString('hex');
  const names = {
    SOURCE_STREAM: `demo:${run}:orders`,
    SINK_STREAM: `demo:${run}:totals`,
    DLQ_STREAM: `demo:${run}:dlq`,
    GROUP: `demo-${run}`,
  };
  Object.assign(process.env, names, {
    REDIS_URL: url,
    METRICS_PORT: process.env.METRICS_PORT ?? '0',
    IDLE_CLOSE: '1s',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  const redis = connectRedis({ url, name: 'streamshard:demo', connectTimeoutMs: 10_000 });
  let pipeline: Pipeline | null = null;
  try {
    await redis.connect();
    // Event times span the last ~minute, a few per millisecond per key at most.
    const intervalMs = 60_000 / events;
    const startTs = Date.now() - 65_000;
    say(
      `▶ producing ${events} events over ${keys} keys into ${names.SOURCE_STREAM} (2% duplicates, 2% out of order, 1% malformed)…`,
    );
    const produced = await withBar('produce', events, (tick) =>
      produce(
        redis,
        names.SOURCE_STREAM,
        {
          count: events,
          keys,
          seed: 7,
          duplicatePct: 2,
          outOfOrderPct: 2,
          malformedPct: 1,
          startTs,
          intervalMs,
          outOfOrderMaxMs: 3000,
          encoding: 'msgpack',
          keyField: 'key',
          bodyField: 'data',
        },
        tick,
      ),
    );
    say(`  ${produced.produced} entries in ${produced.seconds.toFixed(2)} s`);

    say(`▶ running ${EXAMPLE}`);
    pipeline = Pipeline.fromFile(EXAMPLE);
    const t0 = performance.now();
    await pipeline.start();
    const p = pipeline;
    say(`  ${p.config.shards} shard(s); metrics at http://127.0.0.1:${p.metricsPort}/metrics`);
    await withBar('process', events, async (tick) => {
      for (;;) {
        const done = await acked(redis, names.SOURCE_STREAM, names.GROUP);
        tick(done, events);
        if (done >= produced.produced) return;
        await Promise.race([sleep(100), p.failed]);
      }
    });
    const drainSeconds = (performance.now() - t0) / 1000;
    say(
      '▶ waiting for the last windows to close (idle close: 1 s of quiet, then stream time follows the clock)…',
    );
    await waitForAllWindowsClosed(redis, p);
    await printResults(url, redis, names, produced.produced, drainSeconds);
    if (o.keep) {
      say(`▶ still running: http://127.0.0.1:${p.metricsPort}/metrics — Ctrl-C to stop`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
    return 0;
  } catch (e) {
    process.stderr.write(`demo failed: ${(e as Error).message}\n`);
    return 1;
  } finally {
    if (pipeline) await pipeline.stop();
    redis.disconnect();
    if (local) {
      await local.stop();
      say('▶ private redis-server stopped');
    }
  }
}

async function acked(redis: Redis, stream: string, group: string): Promise<number> {
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  for (const g of groups) {
    const f = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1]);
    if (f.get('name') !== group) continue;
    return Number(f.get('entries-read') ?? 0) - Number(f.get('pending') ?? 0);
  }
  return 0;
}

async function waitForAllWindowsClosed(redis: Redis, p: Pipeline): Promise<void> {
  const openKey = `${p.config.redis.keyPrefix}:${p.config.source.stream}:${p.config.source.group}:wi:*`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const [, open] = await redis.scan('0', 'MATCH', openKey, 'COUNT', 10_000);
    if (open.length === 0) return;
    await sleep(200);
  }
  throw new Error('windows did not close within 60 s');
}

async function printResults(
  url: string,
  redis: Redis,
  names: Record<string, string>,
  produced: number,
  drainSeconds: number,
): Promise<void> {
  const sink = names.SINK_STREAM as string;
  const dlq = names.DLQ_STREAM as string;
  const [results, dead] = await Promise.all([redis.xlen(sink), redis.xlen(dlq)]);
  say('');
  say(
    `✔ processed ${produced} entries in ${drainSeconds.toFixed(2)} s (${Math.round(produced / drainSeconds)} events/s)`,
  );
  say(`  window results: ${results} entries in ${sink}`);
  say(`  dead letters:   ${dead} entries in ${dlq}`);
  const codes = new Map<string, number>();
  for (const [, f] of (await redis.xrange(dlq, '-', '+')) as Array<[string, string[]]>) {
    const err = f[f.indexOf('error') + 1] ?? '';
    const code = err.split(':')[0] ?? '';
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  for (const [code, n] of codes) say(`    ${code.padEnd(16)} ${n}`);
  say('');
  say('  first window results (redis-cli XRANGE):');
  const rows = (await redis.xrange(sink, '-', '+', 'COUNT', 8)) as Array<[string, string[]]>;
  const header = ['key', 'window_start', 'window_end', 'count', 'sum_amount', 'max_amount', 'avg_amount'];
  say(`  ${header.map((h) => h.padEnd(15)).join('')}`);
  for (const [, f] of rows) {
    const m = new Map<string, string>();
    for (let i = 0; i + 1 < f.length; i += 2) m.set(f[i] as string, f[i + 1] as string);
    say(`  ${header.map((h) => fmt(h, m.get(h) ?? '').padEnd(15)).join('')}`);
  }
  say('');
  say(`  the whole output: redis-cli -u ${redactUrl(url)} XRANGE ${sink} - + (while the demo runs: --keep)`);
}

function fmt(field: string, v: string): string {
  if (field.startsWith('window_')) return new Date(Number(v)).toISOString().slice(11, 23);
  if (field.startsWith('avg_')) return Number(v).toFixed(2);
  return v;
}

/** Runs `work` with a progress bar on a TTY (plain percentages otherwise). */
async function withBar<T>(
  label: string,
  total: number,
  work: (tick: (done: number, total: number) => void) => Promise<T>,
): Promise<T> {
  if (!process.stdout.isTTY) {
    let lastPct = -1;
    return work((done, t) => {
      const pct = Math.floor((100 * done) / Math.max(1, t));
      if (pct >= lastPct + 25 || (done >= t && lastPct < 100)) {
        lastPct = pct;
        say(`  ${label}: ${pct}%`);
      }
    });
  }
  const bar = new cliProgress.SingleBar(
    { format: `  ${label.padEnd(8)} [{bar}] {percentage}% {value}/{total} ({eta}s left)`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  try {
    return await work((done, t) => {
      bar.setTotal(t);
      bar.update(done);
    });
  } finally {
    bar.stop();
  }
}

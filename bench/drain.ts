/**
 * Backlog drain: the same generated input drained, in one run, by
 *   a. raw drain — XREADGROUP COUNT 1000 + XACK, no processing (the ceiling for one reader connection);
 *   b. streamshard — `streamshard run` as a child process (the container's command) with
 *      config/orders-tumbling.yaml (dedup + tumbling window + output stream + checkpoint + ack).
 * Reports events/s, the ratio to the raw drain, and the pipeline's RSS sampled every 250 ms while it
 * drains (peak, and first-half vs second-half peak to show it stays flat). Writes bench/results/drain-*.json.
 *
 *   npm run bench:drain -- [events=1000000] [keys=10000] [shards=2]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { produce } from '../src/produce/producer.js';
import { startLocalRedis } from '../src/util/localRedis.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const [events = 1_000_000, keys = 10_000, shards = 2] = process.argv.slice(2).map(Number);

const log = (s: string) => process.stderr.write(`${s}\n`);

async function groupState(
  redis: Redis,
  stream: string,
  group: string,
): Promise<{ read: number; pending: number }> {
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  for (const g of groups) {
    const m = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) m.set(String(g[i]), g[i + 1]);
    if (m.get('name') === group)
      return { read: Number(m.get('entries-read') ?? 0), pending: Number(m.get('pending')) };
  }
  return { read: 0, pending: -1 };
}

async function rawDrain(redis: Redis, stream: string): Promise<number> {
  await redis.xgroup('CREATE', stream, 'raw', '0');
  const t0 = performance.now();
  let n = 0;
  for (;;) {
    const reply = (await redis.xreadgroup(
      'GROUP',
      'raw',
      'c',
      'COUNT',
      1000,
      'STREAMS',
      stream,
      '>',
    )) as Array<[string, Array<[string, string[]]>]> | null;
    const items = reply?.[0]?.[1] ?? [];
    if (items.length === 0) break;
    await redis.xack(stream, 'raw', ...items.map((e) => e[0]));
    n += items.length;
  }
  if (n !== events) throw new Error(`raw drain read ${n} of ${events}`);
  return (performance.now() - t0) / 1000;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function pipelineDrain(url: string, stream: string): Promise<{ seconds: number; rss: number[] }> {
  const env = {
    ...process.env,
    REDIS_URL: url,
    SOURCE_STREAM: stream,
    SINK_STREAM: `${stream}:out`,
    DLQ_STREAM: `${stream}:dlq`,
    GROUP: 'bench',
    SHARDS: String(shards),
    METRICS_PORT: '0',
    IDLE_CLOSE: '0',
    LOG_LEVEL: 'warn',
  };
  const child = spawn(
    process.execPath,
    [join(ROOT, 'dist/src/cli/main.js'), 'run', '-c', join(ROOT, 'config/orders-tumbling.yaml')],
    {
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const redis = new Redis(url, { protocol: 2 });
  const rss: number[] = [];
  const t0 = performance.now();
  let last = 0;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pipeline exited with ${child.exitCode}`);
    rss.push(rssMb(child.pid as number));
    const s = await groupState(redis, stream, 'bench').catch(() => ({ read: 0, pending: -1 }));
    if (s.read - s.pending >= events && s.pending === 0) break;
    if (s.read - last >= events / 10) {
      last = s.read;
      log(
        `  streamshard: ${Math.round((100 * s.read) / events)}% read, ${s.pending} pending, RSS ${rss.at(-1)?.toFixed(0)} MB`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const seconds = (performance.now() - t0) / 1000;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  redis.disconnect();
  return { seconds, rss };
}

async function main(): Promise<void> {
  const local = await startLocalRedis();
  const redis = new Redis(local.url, { protocol: 2 });
  try {
    const gen = {
      count: events,
      keys,
      seed: 11,
      duplicatePct: 5,
      outOfOrderPct: 2,
      malformedPct: 1,
      startTs: 1_700_000_000_000,
      intervalMs: 1,
      outOfOrderMaxMs: 3000,
      encoding: 'msgpack' as const,
    };
    for (const s of ['bench:raw', 'bench:pipe']) {
      log(`producing ${events} events over ${keys} keys into ${s}…`);
      await produce(redis, s, gen);
    }
    log('a. raw drain (XREADGROUP COUNT 1000 + XACK)…');
    const raw = await rawDrain(redis, 'bench:raw');
    log(`b. streamshard run (${shards} shards, config/orders-tumbling.yaml)…`);
    const pipe = await pipelineDrain(local.url, 'bench:pipe');
    const half = Math.floor(pipe.rss.length / 2);
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: availableParallelism(), model: cpus()[0]?.model, node: process.version },
      input: { ...gen, shards },
      rawDrain: { seconds: raw, eventsPerSecond: Math.round(events / raw) },
      streamshard: {
        seconds: pipe.seconds,
        eventsPerSecond: Math.round(events / pipe.seconds),
        ratioToRawDrain: Number((raw / pipe.seconds).toFixed(3)),
        rssPeakMb: Math.round(Math.max(...pipe.rss)),
        rssPeakFirstHalfMb: Math.round(Math.max(...pipe.rss.slice(0, half))),
        rssPeakSecondHalfMb: Math.round(Math.max(...pipe.rss.slice(half))),
        windowsEmitted: await redis.xlen('bench:pipe:out'),
        deadLetters: await redis.xlen('bench:pipe:dlq'),
      },
    };
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    const file = join(ROOT, `bench/results/drain-${result.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.table({
      'raw drain': { 'events/s': result.rawDrain.eventsPerSecond, 'ratio to raw': 1, 'peak RSS MB': '-' },
      streamshard: {
        'events/s': result.streamshard.eventsPerSecond,
        'ratio to raw': result.streamshard.ratioToRawDrain,
        'peak RSS MB': `${result.streamshard.rssPeakMb} (1st half ${result.streamshard.rssPeakFirstHalfMb}, 2nd half ${result.streamshard.rssPeakSecondHalfMb})`,
      },
    });
    log(`saved ${file}`);
  } finally {
    redis.disconnect();
    await local.stop();
  }
}

await main();

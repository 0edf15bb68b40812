/**
 * Memory scenarios of streamshard (`streamshard run -c bench/streamshard.yaml`, RSS of the process — main
 * thread and shard workers — from /proc every 250 ms, as in the e2e bench):
 *   keys     1M events, each with its own key, 1 ms apart, and a 1 h window that none of them leaves:
 *            every (key, window) stays open, so the shards hold 1M open windows at the end (plus the
 *            dedup memory at its bound). Peak RSS during the drain; target ≤ 300 MB.
 *   backlog  a 5M-event backlog (10,000 keys, 10 s windows, as in the e2e bench) drained from the start;
 *            peak RSS in each fifth of the drain (by time), to show whether memory stays flat.
 *   sessions in this process, no Redis: bytes per open session — 1M keys with one open session each in a
 *            session stage (count/sum/min/max), heap + array buffers after a full GC, less before.
 *   held     bytes per event an `order` stage holds while a version is missing (in this process: heap +
 *            array buffers; 100,000 events over 10,000 keys; bench/lib/heldBytes.ts).
 * Saves bench/results/memory-<time>.json.
 *
 *   npm run bench:memory -- [--scenario keys|backlog|sessions|held|both] [--keys-events 1000000] [--backlog-events 5000000]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../src/tools/localRedis.js';
import { produce } from '../src/tools/produce/producer.js';
import { windowOperator } from '../src/shard/stages/window/operator.js';
import { ROOT } from './lib/contender.js';
import { type DrainResult, measureDrain } from './lib/drainRun.js';
import { parseFlags } from './lib/flags.js';
import { bytesPerHeldEvent } from './lib/heldBytes.js';
import { produceUniqueKeys } from './lib/input.js';
import { machineInfo, warnIfBusy } from './lib/machine.js';
import { Progress } from './lib/progress.js';
import { redisUsedMemoryMb } from './lib/redisState.js';

const o = parseFlags(
  process.argv.slice(2),
  { scenario: 'both', keysEvents: 1_000_000, backlogEvents: 5_000_000, shards: 2, pollMs: 100 },
  'npm run bench:memory -- [--scenario keys|backlog|sessions|held|both] [--keys-events N] [--backlog-events N] [--shards N]',
);
const START_TS = 1_700_002_800_000; // a whole hour: the keys scenario's events all fall in one 1 h window
const HOUR = 3_600_000;
const progress = new Progress();
warnIfBusy((l) => progress.log(l));
const local = await startLocalRedis({ log: (m) => progress.log(m) });
const redis = new Redis(local.url, { protocol: 2 });
const spec = { name: `streamshard-${o.shards}`, kind: 'streamshard' as const, shards: o.shards };
const settings = { url: local.url, windowMs: 10_000, graceMs: 1000, commitMaxDelayMs: 10, pollMs: o.pollMs };

/** Peak RSS in `parts` equal time slices of the drain (ready → done). */
function slices(d: DrainResult, parts: number): number[] {
  const out = new Array<number>(parts).fill(0);
  for (const [t, mb] of d.rss) {
    if (t < 0 || t > d.seconds) continue;
    const k = Math.min(parts - 1, Math.floor((t / d.seconds) * parts));
    out[k] = Math.max(out[k] as number, mb);
  }
  return out;
}

/** Runs one scenario; a failure (streamshard exiting, e.g. a worker out of heap) is reported, not thrown. */
async function scenario(name: string, what: string, run: () => Promise<[string, object]>): Promise<void> {
  try {
    const [line, data] = await run();
    report[name] = data;
    lines.push(`${what}: ${line}`);
  } catch (e) {
    report[name] = { error: (e as Error).message };
    lines.push(`${what}: FAILED: ${(e as Error).message}`);
  }
}

async function keysScenario(): Promise<[string, object]> {
  const stream = 'bench:mem:keys';
  const task = progress.task(`producing ${o.keysEvents} events, one key each`, o.keysEvents);
  await produceUniqueKeys(redis, stream, o.keysEvents, START_TS, 1, (n) => task.update(n));
  task.done('');
  try {
    const target = o.keysEvents;
    const d = await measureDrain(
      redis,
      spec,
      { ...settings, stream, target, windowMs: HOUR, tag: 'keys' },
      progress,
    );
    const met = d.peakRssMb <= 300 ? 'met' : 'not met';
    return [
      `peak RSS ${d.peakRssMb} MB (target ≤ 300 MB: ${met}); drained in ${d.seconds.toFixed(1)} s ` +
        `(${d.eventsPerSecond} ev/s); ${d.resultsWritten} windows closed`,
      { ...d, redisUsedMemoryMb: Math.round(await redisUsedMemoryMb(redis)) },
    ];
  } finally {
    await redis.unlink(stream);
  }
}

async function backlogScenario(): Promise<[string, object]> {
  const stream = 'bench:mem:backlog';
  const task = progress.task(`producing a ${o.backlogEvents} backlog`, o.backlogEvents);
  const gen = {
    count: o.backlogEvents,
    keys: 10_000,
    seed: 11,
    duplicatePct: 0,
    outOfOrderPct: 0,
    malformedPct: 0,
    startTs: START_TS,
    intervalMs: 1,
    outOfOrderMaxMs: 1,
    encoding: 'msgpack' as const,
  };
  await produce(redis, stream, gen, (n) => task.update(n));
  task.done('');
  try {
    const d = await measureDrain(
      redis,
      spec,
      { ...settings, stream, target: o.backlogEvents, tag: 'backlog' },
      progress,
    );
    const fifths = slices(d, 5);
    // Flat: after the first fifth (heaps and the dedup memory filling up), no fifth's peak is more than 10%
    // above the second fifth's.
    const flat = fifths.slice(2).every((x) => x <= 1.1 * (fifths[1] as number));
    return [
      `peak RSS per fifth ${fifths.join(' / ')} MB (${flat ? 'flat' : 'not flat'}: later fifths within 10% ` +
        `of the 2nd); ${d.eventsPerSecond} ev/s`,
      { ...d, peakRssByFifthMb: fifths, flat },
    ];
  } finally {
    await redis.unlink(stream);
  }
}

/** Bytes per open session: 1M keys (`u0…`) with one session each, in one session stage. */
async function sessionsScenario(): Promise<[string, object]> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const used = () => {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const n = o.keysEvents;
  const aggregates = [
    { fn: 'count' as const },
    { fn: 'sum' as const, field: 'amount' },
    { fn: 'min' as const, field: 'amount' },
    { fn: 'max' as const, field: 'amount' },
  ];
  const before = used();
  const stage = windowOperator({ type: 'session', gap: HOUR, grace: 0, idleClose: 0, aggregates });
  const values = Float64Array.of(0, 5, 5, 5);
  const enc = new TextEncoder();
  for (let i = 0; i < n; i++) {
    const k = enc.encode(`u${i}`);
    stage.addBytes(k, 0, k.length, 0, i % 256, START_TS + i, values, START_TS + i);
  }
  stage.drain(); // the checkpoint strings are built and dropped: what stays is the state
  const per = (used() - before) / n;
  if (stage.openBuckets !== n) throw new Error(`expected ${n} open sessions, got ${stage.openBuckets}`);
  return [`${per.toFixed(0)} bytes per open session (heap + array buffers)`, { bytesPerOpenSession: per }];
}

const report: Record<string, unknown> = { date: new Date().toISOString(), flags: o };
const lines: string[] = [];
const n = (x: number) => x.toLocaleString('en-US');
try {
  if (o.scenario === 'keys' || o.scenario === 'both') {
    await scenario(
      'keys',
      `keys: ${n(o.keysEvents)} distinct keys with open windows, ${o.shards} shards`,
      keysScenario,
    );
  }
  if (o.scenario === 'backlog' || o.scenario === 'both') {
    await scenario('backlog', `backlog: ${n(o.backlogEvents)} events, ${o.shards} shards`, backlogScenario);
  }
  if (o.scenario === 'sessions') {
    await scenario(
      'sessions',
      `sessions: ${n(o.keysEvents)} keys with one open session each`,
      sessionsScenario,
    );
  }
  if (o.scenario === 'held' || o.scenario === 'both') {
    await scenario('held', 'held: events an order stage buffers (100,000 over 10,000 keys)', async () => {
      const h = bytesPerHeldEvent(10_000, 10);
      return [`${h.bytes} bytes per buffered out-of-order event (its entry: ${h.entryBytes} bytes)`, h];
    });
  }
  report.machine = await machineInfo(redis);
  progress.stop();
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, `bench/results/memory-${String(report.date).replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  for (const l of lines) console.log(l);
  progress.log(`saved ${file}`);
} finally {
  progress.stop();
  redis.disconnect();
  await local.stop();
}

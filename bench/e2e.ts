/**
 * End-to-end benchmark: one generated input, drained in one run by each contender, round by round
 * (interleaved, the order rotating each round), each through its own fresh consumer group at ID 0:
 *   raw        XREADGROUP COUNT 1000 + XACK, no processing (the ceiling)    bench/contenders/raw.ts
 *   tutorial   COUNT 10, decode, XACK per message (a prefix of the stream)    bench/contenders/tutorial.ts
 *   single     a well-written single-threaded windowed consumer             bench/contenders/single.ts
 *   streamshard-N  `streamshard run -c bench/streamshard.yaml`, N shards
 * then, per contender, latency at half its measured median rate (bench/lib/liveRun.ts). Prints progress on
 * stderr, a Markdown table and the targets on stdout, and saves bench/results/e2e-<time>.json.
 * Method and results: BENCHMARKS.md.
 *
 *   npm run bench:e2e -- [--events 1000000] [--keys 10000] [--rounds 3] [--no-latency] …   (--help)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../src/tools/localRedis.js';
import { produce } from '../src/tools/produce/producer.js';
import { type ContenderKind, type ContenderSpec, ROOT } from './lib/contender.js';
import { type DrainResult, measureDrain } from './lib/drainRun.js';
import { parseFlags } from './lib/flags.js';
import { type LiveResult, measureLatency } from './lib/liveRun.js';
import { machineInfo, warnIfBusy } from './lib/machine.js';
import { Progress } from './lib/progress.js';
import { summarize, table, targets, targetTable } from './lib/report.js';

const USAGE = `npm run bench:e2e -- [flags]        (each flag also as BENCH_<NAME>, e.g. BENCH_EVENTS=200000)
  --events N            input entries (default 1000000)
  --keys N              distinct keys (default 10000)
  --rounds N            throughput rounds; the median is reported (default 3)
  --tutorial-events N   prefix the tutorial consumer drains, a multiple of 10 (default 100000)
  --contenders LIST     default raw,tutorial,single,streamshard-1,streamshard-2,streamshard-4
  --window-ms N         tumbling window size of single and streamshard (default 10000)
  --grace-ms N          window grace (default 1000)
  --interval-ms N       event-time step between generated entries (default 1)
  --duplicates PCT      generator duplicates (default 0), also --out-of-order PCT, --malformed PCT
  --commit-max-delay-ms N   streamshard commit.maxDelay (default 10, the product default)
  --latency / --no-latency  measure latency at half of each contender's rate (default on)
  --latency-seconds N   offered-load duration (default 20), --warmup-seconds N (default 2, not counted)
  --poll-ms N           group-state poll interval of the drain timing (default 25)`;

const o = parseFlags(
  process.argv.slice(2),
  {
    events: 1_000_000,
    keys: 10_000,
    rounds: 3,
    tutorialEvents: 100_000,
    contenders: 'raw,tutorial,single,streamshard-1,streamshard-2,streamshard-4',
    windowMs: 10_000,
    graceMs: 1000,
    intervalMs: 1,
    duplicates: 0,
    outOfOrder: 0,
    malformed: 0,
    commitMaxDelayMs: 10,
    latency: true,
    latencySeconds: 20,
    warmupSeconds: 2,
    pollMs: 25,
  },
  USAGE,
);

function specOf(name: string): ContenderSpec {
  const m = /^streamshard-(\d+)$/.exec(name);
  if (m) return { name, kind: 'streamshard', shards: Number(m[1]) };
  if (['raw', 'tutorial', 'single'].includes(name)) return { name, kind: name as ContenderKind };
  throw new Error(`unknown contender "${name}" (raw, tutorial, single, streamshard-<shards>)`);
}

const specs = o.contenders.split(',').map((s) => specOf(s.trim()));
const tutorialEvents = Math.min(o.events, Math.floor(o.tutorialEvents / 10) * 10);
const progress = new Progress();
warnIfBusy((l) => progress.log(l));
const local = await startLocalRedis({ log: (m) => progress.log(m) });
const redis = new Redis(local.url, { protocol: 2 });
const producerRedis = new Redis(local.url, { protocol: 2 });
const stream = 'bench:in';
const gen = {
  count: o.events,
  keys: o.keys,
  seed: 11,
  duplicatePct: o.duplicates,
  outOfOrderPct: o.outOfOrder,
  malformedPct: o.malformed,
  startTs: 1_700_000_000_000,
  intervalMs: o.intervalMs,
  outOfOrderMaxMs: Math.min(1000, Math.max(1, o.graceMs)),
  encoding: 'msgpack' as const,
};

try {
  const task = progress.task(`producing ${o.events} events`, o.events);
  const produced = await produce(redis, stream, gen, (done) => task.update(done));
  task.done(`${Math.round(o.events / produced.seconds)} events/s`);

  const drains: DrainResult[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const order = specs.map((_, i) => specs[(i + r) % specs.length] as ContenderSpec);
    for (const spec of order) {
      drains.push(
        await measureDrain(
          redis,
          spec,
          {
            url: local.url,
            stream,
            target: spec.kind === 'tutorial' ? tutorialEvents : o.events,
            windowMs: o.windowMs,
            graceMs: o.graceMs,
            commitMaxDelayMs: o.commitMaxDelayMs,
            pollMs: o.pollMs,
            tag: `r${r + 1}`,
          },
          progress,
        ),
      );
      // Every contender must see the same input: nothing may have trimmed or deleted entries.
      const left = await redis.xlen(stream);
      if (left !== o.events)
        throw new Error(`input stream has ${left} entries after ${spec.name}, not ${o.events}`);
    }
  }

  const live: LiveResult[] = [];
  if (o.latency) {
    const medians = summarize(
      specs.map((s) => s.name),
      drains,
      [],
    );
    for (const spec of specs) {
      const rate = Math.round((medians.find((m) => m.contender === spec.name)?.eventsPerSecond ?? 0) / 2);
      live.push(
        await measureLatency(
          redis,
          producerRedis,
          spec,
          {
            url: local.url,
            keys: o.keys,
            rate,
            seconds: o.latencySeconds,
            warmupMs: o.warmupSeconds * 1000,
            windowMs: o.windowMs,
            graceMs: o.graceMs,
            commitMaxDelayMs: o.commitMaxDelayMs,
            pollMs: 5,
          },
          progress,
        ),
      );
    }
  }
  progress.stop();

  const summaries = summarize(
    specs.map((s) => s.name),
    drains,
    live,
  );
  const goals = targets(summaries);
  const date = new Date().toISOString();
  const result = {
    date,
    machine: await machineInfo(redis),
    flags: o,
    input: { ...gen, tutorialEvents, producedSeconds: produced.seconds, byKind: produced.byKind },
    summaries,
    targets: goals,
    drains,
    live,
  };
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, `bench/results/e2e-${date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const when = `${date.slice(0, 16).replace('T', ' ')} UTC`;
  console.log(
    `\nend-to-end, ${o.events.toLocaleString('en-US')} events, ${o.keys} keys, ${o.rounds} rounds (${when})\n`,
  );
  console.log(table(summaries));
  console.log(`\n${targetTable(goals)}\n`);
  progress.log(`saved ${file}`);
} finally {
  progress.stop();
  redis.disconnect();
  producerRedis.disconnect();
  await local.stop();
}

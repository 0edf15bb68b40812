/**
 * Scale-out benchmark (issue 12): one local redis-server, one generated backlog (written once unpartitioned
 * and once per partition count, the same events), drained by each contender round by round (interleaved,
 * the order rotating each round), each through fresh consumer groups:
 *   raw         XREADGROUP COUNT 1000 + XACK, no processing            bench/contenders/raw.ts
 *   raw+write   the same + the window results' XADDs in one MULTI       bench/contenders/rawWrite.ts
 *   IxP[sS]     I `streamshard run` instances × P partitions, S shards per partition (default 2 with one
 *               partition — today's best — and 1 with more, the product's default), bench/scale.yaml
 * For each: events/s, CPU µs per event of its processes (and their main threads) and of Redis, Redis
 * commands per event, cores busy (bench/lib/scaleRun.ts has the method). Prints progress on stderr, the
 * Markdown table on stdout, and saves bench/results/scale-<time>.json. Results: BENCHMARKS.md.
 *
 *   npm run bench:scale -- [--events 1000000] [--rounds 3] [--contenders raw,raw+write,1x1,1x4,2x4] (--help)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode } from '@msgpack/msgpack';
import { Redis } from 'ioredis';
import { DEFAULT_PARTITION_TEMPLATE } from '../src/partition/partitionOf.js';
import { startLocalRedis } from '../src/tools/localRedis.js';
import { generateEvents, type GeneratorOptions } from '../src/tools/produce/generator.js';
import { produce } from '../src/tools/produce/producer.js';
import { ROOT } from './lib/contender.js';
import { parseFlags } from './lib/flags.js';
import { machineInfo, warnIfBusy } from './lib/machine.js';
import { Progress } from './lib/progress.js';
import { commandLines, scaleTable, summarizeScale } from './lib/scaleReport.js';
import { measureScale, type ScaleResult, type ScaleSpec, streamsOf } from './lib/scaleRun.js';

const USAGE = `npm run bench:scale -- [flags]        (each flag also as BENCH_<NAME>, e.g. BENCH_EVENTS=200000)
  --events N            input entries (default 1000000)
  --keys N              distinct keys (default 10000)
  --rounds N            rounds; the median and min–max are reported (default 3)
  --contenders LIST     default raw,raw+write,1x1,1x4,2x4 (IxP[sS]: I instances, P partitions, S shards each)
  --window-ms N         tumbling window size (default 10000), --grace-ms N (default 1000)
  --commit-max-delay-ms N   streamshard commit.maxDelay (default 10, the product default)
  --poll-ms N           group-state poll interval of the drain timing (default 50)
  --cpu-prof DIR        run the streamshard instances with node --cpu-prof, profiles into DIR (then
                        node dist/bench/profileSplit.js DIR/<main thread's file>; slows them down)`;

const o = parseFlags(
  process.argv.slice(2),
  {
    events: 1_000_000,
    keys: 10_000,
    rounds: 3,
    contenders: 'raw,raw+write,1x1,1x4,2x4',
    windowMs: 10_000,
    graceMs: 1000,
    commitMaxDelayMs: 10,
    pollMs: 50,
    cpuProf: '',
  },
  USAGE,
);

function specOf(name: string): ScaleSpec {
  if (name === 'raw') return { name, kind: 'raw', instances: 1, partitions: 1, shards: 0 };
  if (name === 'raw+write') return { name, kind: 'rawWrite', instances: 1, partitions: 1, shards: 0 };
  const m = /^(\d+)x(\d+)(?:s(\d+))?$/.exec(name);
  if (!m)
    throw new Error(`unknown contender "${name}" (raw, raw+write, <instances>x<partitions>[s<shards>])`);
  const partitions = Number(m[2]);
  const shards = m[3] === undefined ? (partitions === 1 ? 2 : 1) : Number(m[3]);
  return { name, kind: 'streamshard', instances: Number(m[1]), partitions, shards };
}

/** Window results the pipeline writes: one per (key, window) of the generated events (no duplicates). */
function expectedResults(gen: GeneratorOptions, windowMs: number): number {
  const seen = new Set<string>();
  for (const e of generateEvents(gen)) {
    const body = decode(e.fields[3] as Buffer) as { ts: number };
    seen.add(`${String(e.fields[1])}|${Math.floor(body.ts / windowMs)}`);
  }
  return seen.size;
}

const specs = o.contenders.split(',').map((s) => specOf(s.trim()));
const progress = new Progress();
warnIfBusy((l) => progress.log(l));
const local = await startLocalRedis({ log: (m) => progress.log(m) });
const redis = new Redis(local.url, { protocol: 2 });
const stream = 'bench:in';
const gen: GeneratorOptions = {
  count: o.events,
  keys: o.keys,
  seed: 11,
  duplicatePct: 0,
  outOfOrderPct: 0,
  malformedPct: 0,
  startTs: 1_700_000_000_000,
  intervalMs: 1,
  outOfOrderMaxMs: 1,
  encoding: 'msgpack',
};

try {
  const expected = expectedResults(gen, o.windowMs);
  for (const partitions of new Set(specs.map((s) => s.partitions))) {
    const task = progress.task(`producing ${o.events} events in ${partitions} partition(s)`, o.events);
    const parts = { count: partitions, keyGroups: 256, template: DEFAULT_PARTITION_TEMPLATE };
    const opts = partitions > 1 ? { ...gen, partitions: parts } : gen;
    const produced = await produce(redis, stream, opts, (done) => task.update(done));
    task.done(`${Math.round(o.events / produced.seconds)} events/s`);
  }

  const runs: ScaleResult[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const order = specs.map((_, i) => specs[(i + r) % specs.length] as ScaleSpec);
    for (const spec of order) {
      const settings = {
        ...o,
        url: local.url,
        stream,
        expectedResults: expected,
        cpuProfDir: o.cpuProf,
        tag: `r${r + 1}`,
      };
      runs.push(await measureScale(redis, spec, settings, progress));
      // Every contender must see the same input: nothing may have trimmed or deleted entries.
      let left = 0;
      for (const s of streamsOf(spec, stream)) left += await redis.xlen(s);
      if (left !== o.events) throw new Error(`input has ${left} entries after ${spec.name}, not ${o.events}`);
    }
  }
  progress.stop();

  const summaries = summarizeScale(
    specs.map((s) => s.name),
    runs,
  );
  const date = new Date().toISOString();
  const result = {
    date,
    machine: await machineInfo(redis),
    flags: o,
    input: { ...gen, expectedResults: expected },
    specs,
    summaries,
    runs,
  };
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, `bench/results/scale-${date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const when = `${date.slice(0, 16).replace('T', ' ')} UTC`;
  const m = result.machine as { loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  console.log(
    `\nscale-out, ${o.events.toLocaleString('en-US')} events, ${o.keys} keys, ${o.rounds} rounds (${when}; ` +
      `load ${m.loadAverageAtStart.join(' ')} at start, ${m.loadAverageAtEnd.join(' ')} at end)\n`,
  );
  console.log(scaleTable(summaries));
  console.log(`\nRedis commands per event (median, the largest):\n${commandLines(summaries)}\n`);
  progress.log(`saved ${file}`);
} finally {
  progress.stop();
  redis.disconnect();
  await local.stop();
}

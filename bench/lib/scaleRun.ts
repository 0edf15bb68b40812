/**
 * One run of the scale-out bench (bench/scale.ts): a contender drains the pre-produced backlog through
 * fresh consumer groups, and the bench reads, from the outside and the same way for every contender, the
 * events/s, the CPU of every process it started (/proc: all threads, and the main thread alone), Redis'
 * CPU (INFO cpu) and Redis' commands (INFO commandstats) over the measured interval.
 *
 *   raw, raw+write   one script on the unpartitioned stream, group at ID 0; measured from its ready line
 *                    (just before its first read) to the poll that finds everything read and acked
 *   IxP (streamshard) I `streamshard run` processes, bench/scale.yaml with P partitions. The groups are
 *                    created at the end of each partition stream ($): the instances start, join, hand
 *                    partitions over until each leads its balanced share (polled on their /metrics); only
 *                    then the bench takes its marks and moves every group to ID 0 (XGROUP SETID … 0
 *                    ENTRIESREAD 0), so the measurement is the steady state of the final assignment, with
 *                    no start-up and no rebalancing in it. Measured to the poll that finds every
 *                    partition's group read to the end and acked; then, untimed, the output stream must
 *                    reach the expected number of window results (the last windows close after idleClose).
 */
import type { Redis } from 'ioredis';
import { DEFAULT_PARTITION_TEMPLATE, partitionStream } from '../../src/partition/partitionOf.js';
import { callsBetween, commandCalls } from './commandStats.js';
import { type ContenderSpec, type Running, start } from './contender.js';
import type { Progress } from './progress.js';
import { dropKeys, groupState, redisCpuSec } from './redisState.js';
import { sumThreadCpu, type ThreadCpu } from './threads.js';

export interface ScaleSpec {
  /** `raw`, `raw+write`, `1x1`, `1x4`, `2x4`… */
  name: string;
  kind: 'raw' | 'rawWrite' | 'streamshard';
  instances: number;
  partitions: number;
  /** Shards per partition (streamshard). */
  shards: number;
}

export interface ScaleSettings {
  url: string;
  /** The pipeline's `source.stream`: the unpartitioned input, and the base of the partition streams. */
  stream: string;
  events: number;
  windowMs: number;
  graceMs: number;
  commitMaxDelayMs: number;
  pollMs: number;
  /** When set, streamshard instances run with `--cpu-prof` and write their profiles here. */
  cpuProfDir: string;
  /** Window results the pipeline writes for the input (computed from the generator). */
  expectedResults: number;
  tag: string;
}

export interface ScaleResult {
  contender: string;
  tag: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  /** User + system CPU of all the contender's processes over the interval. */
  cpuSec: number;
  /** The main threads' share of it. */
  mainThreadSec: number;
  redisCpuSec: number;
  /** Redis command calls over the interval, by command (script-internal calls included). */
  commands: Record<string, number>;
  resultsWritten: number;
  deadLetters: number;
  /** streamshard: ms from spawning the instances to the balanced assignment. */
  convergeMs: number | null;
}

const STALL_MS = 120_000;
const CONVERGE_MS = 90_000;
const OUTPUT_WAIT_MS = 30_000;

/** The input streams a contender reads. */
export function streamsOf(spec: ScaleSpec, stream: string): string[] {
  return Array.from({ length: spec.partitions }, (_, p) =>
    partitionStream(DEFAULT_PARTITION_TEMPLATE, stream, p, spec.partitions),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sum over the streams: entries delivered to the group, and pending. */
async function progressOf(redis: Redis, streams: string[], group: string) {
  let read = 0;
  let pending = 0;
  for (const s of streams) {
    const g = await groupState(redis, s, group);
    read += g.entriesRead;
    pending += g.pending;
  }
  return { read, pending };
}

/** Partitions each instance leads now, from its /metrics. */
async function ownedByInstance(ports: number[]): Promise<number[]> {
  return Promise.all(
    ports.map(async (port) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/^streamshard_partitions_owned (\d+)/m.exec(text)?.[1] ?? -1);
    }),
  );
}

function balanced(owned: number[], partitions: number): boolean {
  const n = owned.length;
  const sum = owned.reduce((a, b) => a + b, 0);
  const lo = Math.floor(partitions / n);
  return sum === partitions && owned.every((x) => x === lo || x === Math.ceil(partitions / n));
}

function childSpec(spec: ScaleSpec, s: ScaleSettings, i: number): ContenderSpec {
  if (spec.kind !== 'streamshard')
    return {
      name: spec.name,
      kind: spec.kind,
      env: { RESULTS_PER_EVENT: String(s.expectedResults / s.events) },
    };
  return {
    name: spec.instances > 1 ? `${spec.name}#${i}` : spec.name,
    kind: 'streamshard',
    shards: spec.shards,
    config: 'bench/scale.yaml',
    nodeArgs: s.cpuProfDir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${s.cpuProfDir}`],
    env: { PARTITIONS: String(spec.partitions), CONSUMER: `bench-${i}` },
  };
}

export async function measureScale(
  redis: Redis,
  spec: ScaleSpec,
  s: ScaleSettings,
  progress: Progress,
): Promise<ScaleResult> {
  const group = `${spec.name.replace(/\W/g, '_')}-${s.tag}`;
  const out = `bench:out:${group}`;
  const dlq = `bench:dlq:${group}`;
  const streams = streamsOf(spec, s.stream);
  const isStreamshard = spec.kind === 'streamshard';
  for (const st of streams) await redis.xgroup('CREATE', st, group, isStreamshard ? '$' : '0');
  const task = progress.task(`${s.tag} ${spec.name}`, s.events);
  const running: Running[] = [];
  try {
    const spawnedAt = Date.now();
    const opts = {
      ...s,
      stream: s.stream,
      group,
      mode: 'drain' as const,
      limit: s.events,
      warmupMs: 0,
      out,
      dlq,
    };
    const log = (l: string) => progress.log(l);
    running.push(
      ...(await Promise.all(
        Array.from({ length: spec.instances }, (_, i) => start(childSpec(spec, s, i), opts, log)),
      )),
    );
    const pids = running.map((r) => r.pid);
    let convergeMs: number | null = null;
    if (isStreamshard) {
      const ports = running.map((r) => r.metricsPort as number);
      for (;;) {
        if (balanced(await ownedByInstance(ports), spec.partitions)) break;
        if (Date.now() - spawnedAt > CONVERGE_MS)
          throw new Error(`${spec.name}: no balanced assignment in time`);
        await sleep(100);
      }
      convergeMs = Date.now() - spawnedAt;
    }
    const cpu0 = sumThreadCpu(pids) as ThreadCpu;
    const redisCpu0 = await redisCpuSec(redis);
    const calls0 = await commandCalls(redis);
    const t0 = isStreamshard ? Date.now() : (running[0] as Running).readyAt;
    if (isStreamshard)
      for (const st of streams) await redis.xgroup('SETID', st, group, '0', 'ENTRIESREAD', 0);

    let last = { read: -1, pending: -1, at: Date.now() };
    let end = 0;
    for (;;) {
      for (const r of running)
        if (r.child.exitCode !== null)
          throw new Error(`${r.spec.name} exited with ${r.child.exitCode} (${r.lastError})`);
      const g = await progressOf(redis, streams, group);
      const now = Date.now();
      if (g.read >= s.events && g.pending === 0) {
        end = now;
        break;
      }
      if (g.read !== last.read || g.pending !== last.pending)
        last = { read: g.read, pending: g.pending, at: now };
      else if (now - last.at > STALL_MS)
        throw new Error(`${spec.name} made no progress for ${STALL_MS / 1000} s`);
      const acked = g.read - g.pending;
      task.update(acked, `${Math.round(acked / Math.max(0.001, (now - t0) / 1000))} ev/s`);
      await sleep(s.pollMs);
    }
    const cpu1 = sumThreadCpu(pids);
    const redisCpu1 = await redisCpuSec(redis);
    const calls1 = await commandCalls(redis);
    if (cpu1 === null) throw new Error(`${spec.name}: a process exited before its CPU was read`);

    let resultsWritten = await redis.xlen(out);
    if (isStreamshard) {
      const until = Date.now() + OUTPUT_WAIT_MS;
      while (resultsWritten < s.expectedResults && Date.now() < until) {
        await sleep(100);
        resultsWritten = await redis.xlen(out);
      }
      if (resultsWritten !== s.expectedResults)
        throw new Error(`${spec.name}: ${resultsWritten} window results, expected ${s.expectedResults}`);
    }
    const seconds = (end - t0) / 1000;
    const result: ScaleResult = {
      contender: spec.name,
      tag: s.tag,
      events: s.events,
      seconds,
      eventsPerSecond: Math.round(s.events / seconds),
      cpuSec: cpu1.totalSec - cpu0.totalSec,
      mainThreadSec: cpu1.mainSec - cpu0.mainSec,
      redisCpuSec: redisCpu1 - redisCpu0,
      commands: callsBetween(calls0, calls1),
      resultsWritten,
      deadLetters: await redis.xlen(dlq),
      convergeMs,
    };
    task.done(`${result.eventsPerSecond} ev/s in ${seconds.toFixed(1)} s`);
    return result;
  } finally {
    await Promise.all(running.map((r) => r.stop()));
    for (const st of streams) await redis.xgroup('DESTROY', st, group).catch(() => 0);
    await redis.unlink(out, dlq);
    await dropKeys(redis, `streamshard:*${group}*`);
  }
}

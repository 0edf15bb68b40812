/**
 * One throughput measurement: a contender drains the input stream through its own, fresh consumer group
 * (created at ID 0 by the bench). Timed from the moment the contender says it starts reading (its ready
 * line) to the first poll (every `pollMs`) that finds the group at entries-read ≥ target and pending = 0:
 * everything read and acked. Meanwhile the child's RSS and CPU are sampled from /proc every 250 ms; CPU
 * is counted from the ready line to the end, so start-up (module loading, spawning workers) is not in it.
 */
import type { Redis } from 'ioredis';
import { type ContenderSpec, type Running, resultOf, start } from './contender.js';
import { ProcSampler } from './proc.js';
import type { Progress } from './progress.js';
import { createGroup, dropKeys, groupState, redisCpuSec } from './redisState.js';

export interface DrainSettings {
  url: string;
  stream: string;
  /** Entries to drain (the whole stream, or a prefix for the tutorial consumer). */
  target: number;
  windowMs: number;
  graceMs: number;
  commitMaxDelayMs: number;
  pollMs: number;
  /** Label of this run, part of the group name (`r1`, `mem`…). */
  tag: string;
}

export interface DrainResult {
  contender: string;
  tag: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  peakRssMb: number;
  /** The child's user+system CPU from ready to done. */
  cpuSec: number;
  /** Redis' CPU over the same interval. */
  redisCpuSec: number;
  /** Entries the run wrote to its output stream (window results). */
  resultsWritten: number;
  deadLetters: number;
  /** The contender script's own report (null for streamshard). */
  childReport: Record<string, unknown> | null;
  /** RSS samples relative to ready: [seconds, MB]. */
  rss: Array<[number, number]>;
}

const STALL_MS = 120_000;

export async function measureDrain(
  redis: Redis,
  spec: ContenderSpec,
  s: DrainSettings,
  progress: Progress,
): Promise<DrainResult> {
  const group = `${spec.name}-${s.tag}`;
  const out = `bench:out:${group}`;
  const dlq = `bench:dlq:${group}`;
  await createGroup(redis, s.stream, group);
  const task = progress.task(`${s.tag} ${spec.name}`, s.target);
  let running: Running | null = null;
  let sampler: ProcSampler | null = null;
  try {
    running = await start(spec, { ...s, group, mode: 'drain', limit: s.target, warmupMs: 0, out, dlq }, (l) =>
      progress.log(l),
    );
    sampler = new ProcSampler(running.pid).start();
    const cpu0 = sampler.samples[0]?.cpuSec ?? 0;
    const redisCpu0 = await redisCpuSec(redis);
    let last = { read: -1, pending: -1, at: Date.now() };
    let end = 0;
    for (;;) {
      if (running.child.exitCode !== null) {
        const why = running.lastError === null ? '' : ` (${running.lastError})`;
        throw new Error(`${spec.name} exited with ${running.child.exitCode} during the drain${why}`);
      }
      const g = await groupState(redis, s.stream, group);
      const now = Date.now();
      if (g.entriesRead >= s.target && g.pending === 0) {
        end = now;
        break;
      }
      if (g.entriesRead !== last.read || g.pending !== last.pending)
        last = { read: g.entriesRead, pending: g.pending, at: now };
      else if (now - last.at > STALL_MS)
        throw new Error(`${spec.name} made no progress for ${STALL_MS / 1000} s`);
      const acked = g.entriesRead - g.pending;
      const rate = Math.round(acked / Math.max(0.001, (now - running.readyAt) / 1000));
      task.update(acked, `${rate} ev/s · RSS ${sampler.lastRssMb.toFixed(0)} MB`);
      await new Promise((r) => setTimeout(r, s.pollMs));
    }
    const cpu1 = sampler.sample()?.cpuSec ?? Number.NaN;
    const redisCpu1 = await redisCpuSec(redis);
    sampler.stop();
    const readyAt = running.readyAt;
    const seconds = (end - readyAt) / 1000;
    const report = spec.kind === 'streamshard' ? null : await resultOf(running);
    const code = await running.stop();
    if (code !== 0) progress.log(`  ${spec.name} exited with ${code} after the drain`);
    const result: DrainResult = {
      contender: spec.name,
      tag: s.tag,
      events: s.target,
      seconds,
      eventsPerSecond: Math.round(s.target / seconds),
      peakRssMb: Math.round(sampler.peakRssMb()),
      cpuSec: cpu1 - cpu0,
      redisCpuSec: redisCpu1 - redisCpu0,
      resultsWritten: await redis.xlen(out),
      deadLetters: await redis.xlen(dlq),
      childReport: report,
      rss: sampler.samples.map((x) => [Number(((x.t - readyAt) / 1000).toFixed(2)), Math.round(x.rssMb)]),
    };
    task.done(`${result.eventsPerSecond} ev/s in ${seconds.toFixed(1)} s, peak RSS ${result.peakRssMb} MB`);
    return result;
  } finally {
    sampler?.stop();
    if (running !== null && running.child.exitCode === null) await running.stop();
    await redis.xgroup('DESTROY', s.stream, group).catch(() => 0);
    await redis.unlink(out, dlq);
    await dropKeys(redis, `streamshard:${s.stream}:${group}:*`);
  }
}

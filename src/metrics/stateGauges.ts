/**
 * Gauges of the pipeline's state: per shard from the workers' answers (read at scrape time from the
 * lanes, no Redis), and pipeline-wide from the background sample (inspect/sampler.ts), so that a scrape
 * never waits on Redis. A value the instance cannot know — a standby's, a shard before its first event —
 * is NaN, never a stale number.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Sample } from '../inspect/sampler.js';

/** What the gauges read. */
export interface StateProbe {
  /** Shard `s`'s figures as of its last committed output, or null while this instance runs no term. */
  shard(s: number): { streamTime: number | null; openWindows: number; dedupIds: number } | null;
  /** The latest background sample, or null (standby, or none yet). */
  sample(): Sample | null;
}

export function registerStateGauges(
  registry: Registry,
  prefix: string,
  shards: number,
  probe: StateProbe,
): void {
  const registers = [registry];
  const perShard = (name: string, help: string, value: (s: number, now: number) => number) =>
    new Gauge({
      name: prefix + name,
      help,
      labelNames: ['shard'],
      registers,
      collect() {
        const now = Date.now();
        for (let s = 0; s < shards; s++) this.set({ shard: String(s) }, value(s, now));
      },
    });
  const streamTime = (s: number) => probe.shard(s)?.streamTime ?? null;
  perShard(
    'shard_stream_time_seconds',
    "The shard's stream time: the highest event time it has seen (epoch seconds).",
    (s) => {
      const t = streamTime(s);
      return t === null ? Number.NaN : t / 1000;
    },
  );
  perShard(
    'shard_stream_time_lag_seconds',
    "Wall clock minus the shard's stream time, in seconds: how far event time is behind now.",
    (s, now) => {
      const t = streamTime(s);
      return t === null ? Number.NaN : (now - t) / 1000;
    },
  );
  perShard(
    'open_windows',
    'Open window buckets (window starts) held by the shard.',
    (s) => probe.shard(s)?.openWindows ?? Number.NaN,
  );
  perShard(
    'dedup_ids',
    'Event IDs the shard’s dedup stage remembers.',
    (s) => probe.shard(s)?.dedupIds ?? Number.NaN,
  );
  const pipelineWide = (name: string, help: string, value: (x: Sample) => number | null) =>
    new Gauge({
      name: prefix + name,
      help,
      registers,
      collect() {
        const x = probe.sample();
        this.set(x === null ? Number.NaN : (value(x) ?? Number.NaN));
      },
    });
  pipelineWide(
    'lag_seconds',
    'Age of the oldest input entry not yet acknowledged (pending, or not yet delivered to the group), sampled every 5 s.',
    (x) => x.lagSeconds,
  );
  pipelineWide(
    'checkpoint_bytes',
    "Redis memory of the pipeline's checkpoint keys (MEMORY USAGE), sampled every 30 s.",
    (x) => x.checkpointBytes,
  );
  new Gauge({
    name: `${prefix}stream_length`,
    help: 'Entries in the input, output and dead-letter streams (XLEN), sampled every 5 s.',
    labelNames: ['stream'],
    registers,
    collect() {
      const x = probe.sample();
      const l = x?.lengths;
      this.set({ stream: 'input' }, l?.input ?? Number.NaN);
      this.set({ stream: 'output' }, l?.output ?? Number.NaN);
      this.set({ stream: 'dead_letter' }, l?.deadLetter ?? Number.NaN);
    },
  });
}

/**
 * What `GET /api/status` answers: the running pipeline's own view of itself, from memory — config graph,
 * role, per-shard figures from the lanes, the background sample (inspect/sampler.ts), the counters of the
 * metrics registry — plus the newest dead letters from a cache (recentDeadLetters.ts). Nothing here
 * talks to Redis per request, so any number of viewers costs Redis nothing more.
 *
 * Counters are totals since the process started (busy time: since the term started); the page gets
 * rates and utilisation from two successive answers, so viewers never disturb each other or the
 * `worker_utilization` gauge (whose reading resets its window).
 */
import type { PipelineConfig } from '../../config/load.js';
import type { Sample } from '../../inspect/sampler.js';
import { packageVersion } from '../../util/version.js';
import type { Metrics } from '../metrics.js';
import { type PipelineGraph, pipelineGraph } from './graph.js';
import type { DeadLetterCache, RecentDeadLetters } from './recentDeadLetters.js';

/** One shard's figures as the engine knows them. */
export interface ShardFigures {
  /** Events read and not yet committed. */
  inFlight: number;
  /** The worker's busy time since the term started, in ms. */
  busyMs: number;
  /** The highest event time seen (epoch ms), null before any event. */
  streamTime: number | null;
  openWindows: number;
  dedupIds: number;
}

/** What the report reads from the running pipeline. */
export interface StatusProbe {
  role(): string;
  /** Fencing epoch of the lease held or held last (0 = never). */
  leaseEpoch(): number;
  /** Null while this instance runs no term (standby). */
  shard(s: number): ShardFigures | null;
  /** The latest background sample; null on a standby or before the first. */
  sample(): Sample | null;
}

export interface StatusReport {
  name: string;
  version: string;
  /** Date.now() of this answer; rates divide counter differences by differences of it. */
  now: number;
  uptimeSeconds: number;
  role: string;
  leaseEpoch: number;
  graph: PipelineGraph;
  counters: {
    read: number;
    acked: number;
    results: number;
    deadLettered: number;
    deadLetteredByCode: Record<string, number>;
  };
  /** One per shard; figures null while standing by. */
  shards: Array<{ shard: number } & { [K in keyof ShardFigures]: ShardFigures[K] | null }>;
  sample: (Sample & { ageSeconds: number }) | null;
  deadLetters: RecentDeadLetters;
}

export class StatusReporter {
  private readonly graph: PipelineGraph;
  private readonly startedAt = Date.now();

  constructor(
    private readonly config: PipelineConfig,
    private readonly metrics: Metrics,
    private readonly probe: StatusProbe,
    private readonly deadLetters: DeadLetterCache,
  ) {
    this.graph = pipelineGraph(config);
  }

  async report(): Promise<StatusReport> {
    const { probe } = this;
    const [totals, byCode, deadLetters] = await Promise.all([
      this.metrics.totals(),
      this.metrics.deadLettersByCode(),
      this.deadLetters.get(),
    ]);
    const now = Date.now();
    const sample = probe.sample();
    const shards = Array.from({ length: this.config.shards }, (_, shard) => {
      const f = probe.shard(shard);
      return {
        shard,
        inFlight: f?.inFlight ?? null,
        busyMs: f?.busyMs ?? null,
        streamTime: f?.streamTime ?? null,
        openWindows: f?.openWindows ?? null,
        dedupIds: f?.dedupIds ?? null,
      };
    });
    return {
      name: this.config.name,
      version: packageVersion(),
      now,
      uptimeSeconds: Math.round((now - this.startedAt) / 1000),
      role: probe.role(),
      leaseEpoch: probe.leaseEpoch(),
      graph: this.graph,
      counters: {
        read: totals.read,
        acked: totals.acked,
        results: totals.results,
        deadLettered: totals.deadLettered,
        deadLetteredByCode: byCode,
      },
      shards,
      // `at` is Redis' clock; the age is measured on ours (close enough for "sampled 3 s ago").
      sample: sample === null ? null : { ...sample, ageSeconds: Math.max(0, (now - sample.at) / 1000) },
      deadLetters,
    };
  }
}

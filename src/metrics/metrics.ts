/**
 * The metrics registry. prom-client lives on the main thread only; workers count into plain numbers and
 * send them with each batch result (`ShardCounts`), which `recordBatch` adds here. No label carries a key
 * or an entry: labels are `shard` (bounded by the shard count), `reason` (the dead-letter codes), and
 * `type`/`status` of `events_processed_total` (bounded by metrics.eventTypes, typeLabels.ts).
 *
 * Our own metrics carry `metrics.prefix`; the Node.js and process metrics keep their standard names
 * (`process_*`, `nodejs_*`), which the usual dashboards look for.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ShardCounts } from '../shard/protocol.js';
import { type EventTypesConfig, STATUSES } from '../shard/typeCounts.js';
import { TypeLabels } from './typeLabels.js';
import { packageVersion } from '../util/version.js';

/** Live values the registry reads at scrape time. */
export interface MetricsProbe {
  /** Consumer-group pending and lag from XINFO GROUPS; null when Redis cannot be asked. */
  groupInfo(): Promise<{ pending: number; lag: number | null } | null>;
  inFlight(shard: number): number;
  utilization(shard: number): number;
  /** The shard worker's V8 heap `[used, size]` in bytes. */
  workerHeap(shard: number): [number, number];
  redisConnected(): boolean;
  /** True while this instance holds the pipeline lease (processes); false while it stands by. */
  isLeader(): boolean;
  /** The fencing epoch of the lease this instance holds or held last (0 = never held). */
  leaseEpoch(): number;
}

/**
 * prom-client's default metrics that are gauges named like counters (`promtool check metrics` rejects a
 * `_total` suffix on a gauge). Each is the sum over its `type` label of the metric without the suffix
 * (`sum(nodejs_active_handles)`), so nothing is lost by leaving them out.
 */
const GAUGES_NAMED_TOTAL = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  readonly eventsRead: Counter;
  readonly eventsAcked: Counter;
  readonly resultsWritten: Counter;
  readonly commitRetries: Counter;
  readonly commitSeconds: Histogram;
  readonly commitsDeduplicated: Counter;
  readonly entriesClaimed: Counter;
  readonly workerRestarts: Counter;
  readonly stageRetries: Counter;
  readonly leaseTakeovers: Counter;
  readonly recoverySeconds: Gauge;
  readonly leaseWaitSeconds: Gauge;
  readonly entriesTrimmed: Counter;
  private readonly processed: Counter<'type' | 'status'>;
  private readonly typeLabels: TypeLabels;
  private readonly filtered: Counter;
  private readonly deduplicated: Counter;
  private readonly late: Counter;
  private readonly rateLimited: Counter;
  private readonly deadLettered: Counter<'reason'>;
  private readonly windowsEmitted: Counter;
  private readonly batchSize: Histogram;
  private readonly processingSeconds: Histogram;
  private readonly endToEnd: Histogram;

  /** @param eventTypes `metrics.eventTypes`: the `type` label's path and bound (typeLabels.ts) */
  constructor(prefix: string, shards: number, probe: MetricsProbe, eventTypes?: EventTypesConfig) {
    const registers = [this.registry];
    const p = prefix;
    const counter = (name: string, help: string) => new Counter({ name: p + name, help, registers });
    this.eventsRead = counter('events_read_total', 'Entries read from the input stream.');
    this.processed = new Counter({
      name: `${p}events_processed_total`,
      help: 'Entries handled by the shard workers, by event type (bounded: metrics.eventTypes) and outcome.',
      labelNames: ['type', 'status'],
      registers,
    });
    this.typeLabels = new TypeLabels(eventTypes);
    this.eventsAcked = counter(
      'events_acked_total',
      'Entries acknowledged after their effect was committed.',
    );
    this.filtered = counter('events_filtered_total', 'Events dropped by a filter stage.');
    this.deduplicated = counter(
      'events_deduplicated_total',
      'Events dropped as duplicates within the dedup TTL, or as stale versions by an order stage.',
    );
    this.late = counter('events_late_total', 'Events whose windows had all closed (also dead-lettered).');
    this.rateLimited = counter(
      'events_rate_limited_total',
      'Events over a rateLimit stage (dropped, or also dead-lettered with onExcess: deadLetter).',
    );
    this.deadLettered = new Counter({
      name: `${p}events_dead_lettered_total`,
      help: 'Entries written to the dead-letter stream, by error code.',
      labelNames: ['reason'],
      registers,
    });
    this.windowsEmitted = counter('windows_emitted_total', 'Window results emitted.');
    this.resultsWritten = counter('results_written_total', 'Entries written to the sink.');
    this.commitRetries = counter('commit_retries_total', 'Commits retried after a Redis error.');
    this.commitsDeduplicated = counter(
      'commits_deduplicated_total',
      'Commit retries found already applied (their reply had been lost) and not applied again.',
    );
    this.entriesClaimed = counter(
      'entries_claimed_total',
      'Pending entries of other consumers claimed (XAUTOCLAIM) when taking over.',
    );
    this.workerRestarts = counter(
      'worker_restarts_total',
      'Shard workers restarted after a crash (state restored from the checkpoint).',
    );
    this.stageRetries = counter(
      'stage_retries_total',
      'Stage retries: each extra try of an event after a stage threw.',
    );
    this.leaseTakeovers = counter(
      'lease_acquired_total',
      'Times this instance acquired the pipeline lease and became the leader.',
    );
    this.entriesTrimmed = counter(
      'input_entries_trimmed_total',
      'Input entries removed by source.trim (only ones no group still needs).',
    );
    this.recoverySeconds = new Gauge({
      name: `${p}recovery_seconds`,
      help: 'Lease acquisition to the first applied commit of the current leadership term (restore, claim, replay).',
      registers,
    });
    this.leaseWaitSeconds = new Gauge({
      name: `${p}lease_wait_seconds`,
      help: 'How long this instance waited for the lease before its current term (from start or stand-down).',
      registers,
    });
    new Gauge({
      name: `${p}leader`,
      help: '1 while this instance holds the pipeline lease and processes; 0 while it stands by.',
      registers,
      collect() {
        this.set(probe.isLeader() ? 1 : 0);
      },
    });
    new Gauge({
      name: `${p}lease_epoch`,
      help: 'Fencing epoch of the lease this instance holds or held last (0 = never held).',
      registers,
      collect() {
        this.set(probe.leaseEpoch());
      },
    });
    this.batchSize = new Histogram({
      name: `${p}batch_size`,
      help: 'Events per shard batch.',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
      registers,
    });
    this.processingSeconds = new Histogram({
      name: `${p}processing_seconds`,
      help: 'Worker time per task (every shard batch and every idle-close tick), commit encoding included.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.endToEnd = new Histogram({
      name: `${p}end_to_end_latency_seconds`,
      help: 'From event time to the commit of its effect.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.commitSeconds = new Histogram({
      name: `${p}commit_seconds`,
      help: 'Duration of one atomic commit round trip.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    new Gauge({
      name: `${p}consumer_group_pending`,
      help: 'Entries delivered to the group and not yet acknowledged (XINFO GROUPS).',
      registers,
      async collect() {
        const info = await probe.groupInfo();
        this.set(info?.pending ?? Number.NaN); // NaN, not a stale value, while Redis cannot tell
      },
    });
    new Gauge({
      name: `${p}consumer_group_lag`,
      help: 'Entries in the stream not yet delivered to the group (XINFO GROUPS lag).',
      registers,
      async collect() {
        const info = await probe.groupInfo();
        this.set(info?.lag ?? Number.NaN);
      },
    });
    new Gauge({
      name: `${p}shard_in_flight_events`,
      help: 'Events read and not yet committed, per shard.',
      labelNames: ['shard'],
      registers,
      collect() {
        for (let s = 0; s < shards; s++) this.set({ shard: String(s) }, probe.inFlight(s));
      },
    });
    new Gauge({
      name: `${p}worker_utilization`,
      help: 'Share of wall time the shard worker was busy since the previous scrape (0..1).',
      labelNames: ['shard'],
      registers,
      collect() {
        for (let s = 0; s < shards; s++) this.set({ shard: String(s) }, probe.utilization(s));
      },
    });
    const heap = (what: string, help: string, i: 0 | 1) =>
      new Gauge({
        name: `${p}shard_heap_${what}_bytes`,
        help,
        labelNames: ['shard'],
        registers,
        collect() {
          for (let s = 0; s < shards; s++) this.set({ shard: String(s) }, probe.workerHeap(s)[i]);
        },
      });
    heap(
      'used',
      "V8 heap in use in the shard worker's thread (the nodejs_* metrics cover the main thread only).",
      0,
    );
    heap('size', "V8 heap size (reserved) of the shard worker's thread.", 1);
    new Gauge({
      name: `${p}redis_connected`,
      help: '1 when the Redis connections are ready.',
      registers,
      collect() {
        this.set(probe.redisConnected() ? 1 : 0);
      },
    });
    new Gauge({
      name: `${p}build_info`,
      help: 'Always 1; the labels name the streamshard version and the Node.js version running it.',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version: packageVersion(), node: process.versions.node }, 1);
    collectDefaultMetrics({ register: this.registry });
    for (const name of GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name);
  }

  /** Totals since start, for the stats and summary log lines (read from the counters, not kept twice). */
  async totals(): Promise<{ read: number; acked: number; deadLettered: number; results: number }> {
    const sum = async (c: Counter<string>) => (await c.get()).values.reduce((n, v) => n + v.value, 0);
    const [read, acked, deadLettered, results] = await Promise.all([
      sum(this.eventsRead),
      sum(this.eventsAcked),
      sum(this.deadLettered),
      sum(this.resultsWritten),
    ]);
    return { read, acked, deadLettered, results };
  }

  /** Dead letters written since start, by code (the `reason` label), for the status page. */
  async deadLettersByCode(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const v of (await this.deadLettered.get()).values) out[String(v.labels.reason)] = v.value;
    return out;
  }

  /** Adds one task's counts and timings: a shard batch's, or an idle-close tick's (no events). */
  recordBatch(
    batchSize: number,
    counts: ShardCounts,
    busyMs: number,
    eventTimes: number[],
    committedAt: number,
  ): void {
    if (batchSize > 0) this.batchSize.observe(batchSize);
    this.processingSeconds.observe(busyMs / 1000);
    for (const [type, status, n] of counts.byType) {
      this.processed.inc({ type: this.typeLabels.label(type), status: STATUSES[status] as string }, n);
    }
    if (counts.filtered) this.filtered.inc(counts.filtered);
    if (counts.deduplicated) this.deduplicated.inc(counts.deduplicated);
    if (counts.rateLimited) this.rateLimited.inc(counts.rateLimited);
    if (counts.late) this.late.inc(counts.late);
    if (counts.windowsEmitted) this.windowsEmitted.inc(counts.windowsEmitted);
    if (counts.stageRetries) this.stageRetries.inc(counts.stageRetries);
    for (const reason in counts.deadLettered) this.deadLettered.inc({ reason }, counts.deadLettered[reason]);
    for (const t of eventTimes) this.endToEnd.observe(Math.max(0, committedAt - t) / 1000);
  }
}

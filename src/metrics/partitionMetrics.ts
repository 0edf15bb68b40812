/**
 * Metrics of the partitions an instance owns and of their moves (docs/metrics.md "Partitions"). Lag and
 * pending are per partition, from each owned partition's background sample (inspect/sampler.ts), so a
 * scrape never waits on Redis; a partition this instance does not own has no series here (its owner
 * reports it), which keeps `sum by (partition)` over all instances exact.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Sample } from '../inspect/sampler.js';

/** What the gauges read at scrape time. */
export interface PartitionProbe {
  /** The partitions this instance leads now, each with its latest sample (null before the first). */
  owned(): Array<{ partition: number; sample: Sample | null }>;
  /** Live members of the pipeline as last seen, and the partitions assigned to this one. */
  membership(): { members: number; assigned: number };
}

const HANDOVER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class PartitionMetrics {
  private readonly acquisitions: Counter;
  private readonly releases: Counter;
  private readonly losses: Counter;
  private readonly handOver: Histogram;
  private readonly waited: Histogram;
  readonly rebalances: Counter;

  constructor(registry: Registry, prefix: string, probe: PartitionProbe) {
    const registers = [registry];
    const p = prefix;
    new Gauge({
      name: `${p}partitions_owned`,
      help: 'Partitions this instance leads (holds the lease of and processes).',
      registers,
      collect() {
        this.set(probe.owned().length);
      },
    });
    new Gauge({
      name: `${p}partitions_assigned`,
      help: 'Partitions the balanced assignment gives this instance (owned once the hand-over is done).',
      registers,
      collect() {
        this.set(probe.membership().assigned);
      },
    });
    new Gauge({
      name: `${p}members`,
      help: 'Live instances of the pipeline, as this instance last saw the membership.',
      registers,
      collect() {
        this.set(probe.membership().members);
      },
    });
    const perPartition = (name: string, help: string, value: (s: Sample) => number | null) =>
      new Gauge({
        name: p + name,
        help,
        labelNames: ['partition'],
        registers,
        collect() {
          this.reset(); // partitions handed over since the last scrape lose their series here
          for (const o of probe.owned()) {
            const v = o.sample === null ? null : value(o.sample);
            this.set({ partition: String(o.partition) }, v ?? Number.NaN);
          }
        },
      });
    perPartition(
      'partition_lag_seconds',
      "Age of the partition's oldest entry not yet acknowledged, in seconds (owned partitions).",
      (s) => s.lagSeconds,
    );
    perPartition(
      'partition_pending',
      "Entries delivered to the partition's group and not yet acknowledged (owned partitions).",
      (s) => s.pending,
    );
    perPartition(
      'partition_lag',
      "Entries in the partition's stream not yet delivered to its group (owned partitions).",
      (s) => s.lag,
    );
    this.acquisitions = new Counter({
      name: `${p}partition_acquisitions_total`,
      help: 'Partitions this instance acquired (a term started).',
      registers,
    });
    this.releases = new Counter({
      name: `${p}partition_releases_total`,
      help: 'Partitions this instance handed over gracefully (rebalance or stop).',
      registers,
    });
    this.losses = new Counter({
      name: `${p}partition_losses_total`,
      help: 'Partitions whose lease another instance took while this one led (a pause, a partition).',
      registers,
    });
    this.rebalances = new Counter({
      name: `${p}rebalances_total`,
      help: 'Times the set of partitions assigned to this instance changed.',
      registers,
    });
    this.handOver = new Histogram({
      name: `${p}partition_handover_seconds`,
      help: 'Graceful hand-over of a partition: stop reading, commit what was read, release the lease.',
      buckets: HANDOVER_BUCKETS,
      registers,
    });
    this.waited = new Histogram({
      name: `${p}partition_acquire_wait_seconds`,
      help: 'How long a partition was idle on this instance before it acquired it (hand-over or take-over).',
      buckets: HANDOVER_BUCKETS,
      registers,
    });
  }

  acquired(_partition: number, waitedMs: number): void {
    this.acquisitions.inc();
    this.waited.observe(waitedMs / 1000);
  }

  released(_partition: number, handOverMs: number): void {
    this.releases.inc();
    this.handOver.observe(handOverMs / 1000);
  }

  lost(_partition: number): void {
    this.losses.inc();
  }
}

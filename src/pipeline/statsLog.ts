/**
 * The log lines an operator reads without a dashboard: a `stats` line every `metrics.statsEvery` while
 * this instance leads (rates since the previous line, lag, dead letters), and the totals since start that
 * the `stopped` line carries. The figures come from the metrics registry and the background
 * sample (inspect/sampler.ts): nothing is counted twice, nothing waits on Redis.
 */
import type { Sample } from '../inspect/sampler.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from '../util/log.js';

type Totals = Awaited<ReturnType<Metrics['totals']>>;

export class StatsLog {
  private timer: NodeJS.Timeout | null = null;
  private prev: { at: number; totals: Totals } | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly metrics: Metrics,
    private readonly sample: () => Sample | null,
    private readonly log: Logger,
    private readonly everyMs: number,
  ) {}

  start(): void {
    if (this.everyMs <= 0 || this.timer !== null) return;
    this.prev = null;
    void this.line(false);
    this.timer = setInterval(() => void this.line(true), this.everyMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Logs the rates since the previous call (`emit` false: only takes the starting point). */
  private async line(emit: boolean): Promise<void> {
    const at = Date.now();
    const totals = await this.metrics.totals();
    const prev = this.prev;
    this.prev = { at, totals };
    if (!emit || prev === null) return;
    const seconds = Math.max(0.001, (at - prev.at) / 1000);
    const s = this.sample();
    this.log.info(
      {
        eventsPerSecond: Math.round((totals.read - prev.totals.read) / seconds),
        ackedPerSecond: Math.round((totals.acked - prev.totals.acked) / seconds),
        deadLettered: totals.deadLettered - prev.totals.deadLettered,
        lagSeconds: s?.lagSeconds ?? null,
        pending: s?.pending ?? null,
        lag: s?.lag ?? null,
      },
      'stats',
    );
  }

  /** The summary the `stopped` line carries: totals since the process started. */
  async summary(): Promise<Record<string, number>> {
    const t = await this.metrics.totals();
    return {
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      eventsRead: t.read,
      eventsAcked: t.acked,
      deadLettered: t.deadLettered,
      resultsWritten: t.results,
    };
  }
}

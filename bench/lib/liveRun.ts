/**
 * One latency measurement at a fixed offered load: the contender runs live on an empty stream while the
 * bench's producer writes `rate` events/s for `seconds` (IDs and `ts` = the producer's clock at the write).
 *
 * Two measurements of "acked minus written", both skipping entries written in the first `warmupMs`:
 * - watermark (the same for every contender, from outside): the bench polls the group's ack watermark
 *   every `pollMs` (see redisState.ackWatermark); an entry's latency is the first poll that covers it minus
 *   its ID's ms. An upper bound: up to one poll interval late, and an entry acked before an earlier one
 *   (another shard) waits for it.
 * - self-reported: the contender scripts take Date.now() when their XACK replies; streamshard's
 *   `end_to_end_latency_seconds` histogram (commit reply minus event `ts`), scraped at the end of the
 *   warm-up and at the end, the difference interpolated within its buckets like histogram_quantile.
 */
import type { Redis } from 'ioredis';
import { type ContenderSpec, type Running, resultOf, start } from './contender.js';
import { LiveProducer } from './input.js';
import {
  histogramDelta,
  type LatencySummary,
  type PromHistogram,
  parsePromHistogram,
  promQuantile,
  type WatermarkPoll,
  watermarkLatencies,
} from './latency.js';
import type { Progress } from './progress.js';
import { ackWatermark, createGroup, dropKeys, groupState } from './redisState.js';

export interface LiveSettings {
  url: string;
  keys: number;
  rate: number;
  seconds: number;
  warmupMs: number;
  windowMs: number;
  graceMs: number;
  commitMaxDelayMs: number;
  pollMs: number;
}

export interface LiveResult {
  contender: string;
  offeredRate: number;
  /** Events written / seconds the producer took. */
  achievedRate: number;
  sent: number;
  watermark: LatencySummary & { unacked: number };
  /** Contender scripts: exact ms; streamshard: histogram interpolation with the bucket bounds. */
  self: (LatencySummary & { method: string; p50BucketMs?: number[]; p99BucketMs?: number[] }) | null;
}

const HIST = 'streamshard_end_to_end_latency_seconds';

async function scrape(port: number): Promise<PromHistogram> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return parsePromHistogram(await res.text(), HIST);
}

export async function measureLatency(
  redis: Redis,
  producerRedis: Redis,
  spec: ContenderSpec,
  s: LiveSettings,
  progress: Progress,
): Promise<LiveResult> {
  const stream = `bench:live:${spec.name}`;
  const group = 'live';
  const out = `${stream}:out`;
  const dlq = `${stream}:dlq`;
  await redis.unlink(stream, out, dlq);
  await createGroup(redis, stream, group);
  let running: Running | null = null;
  const polls: WatermarkPoll[] = [];
  let polling = true;
  try {
    running = await start(spec, { ...s, stream, group, mode: 'live', limit: 0, out, dlq }, (l) =>
      progress.log(l),
    );
    const poller = (async () => {
      while (polling) {
        const wm = await ackWatermark(redis, stream, group);
        polls.push({ t: Date.now(), wm });
        await new Promise((r) => setTimeout(r, s.pollMs));
      }
    })();
    const task = progress.task(`latency ${spec.name} @ ${s.rate}/s`, Math.round(s.rate * s.seconds));
    const port = running.metricsPort;
    const h0: { scrape: Promise<PromHistogram> | null } = { scrape: null };
    const warm = setTimeout(() => {
      if (port !== null) h0.scrape = scrape(port);
    }, s.warmupMs);
    const produced = await new LiveProducer(producerRedis, stream, s.keys).run(s.rate, s.seconds, (n) =>
      task.update(n),
    );
    clearTimeout(warm);
    const until = Date.now() + 60_000;
    for (;;) {
      const g = await groupState(redis, stream, group);
      if (g.entriesRead >= produced.sent && g.pending === 0) break;
      if (Date.now() > until) throw new Error(`${spec.name}: not all live entries acked 60 s after the load`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 3 * s.pollMs));
    polling = false;
    await poller;
    let self: LiveResult['self'] = null;
    if (port !== null && h0.scrape !== null) {
      const h = histogramDelta(await scrape(port), await h0.scrape);
      const ms = (x: number) => Number((x * 1000).toFixed(1));
      const p50 = promQuantile(h, 0.5);
      const p99 = promQuantile(h, 0.99);
      self = {
        method: 'end_to_end_latency_seconds histogram, interpolated within buckets',
        count: h.count,
        p50Ms: ms(p50.value),
        p99Ms: ms(p99.value),
        maxMs: Number.NaN,
        p50BucketMs: [ms(p50.lower), ms(p50.upper)],
        p99BucketMs: [ms(p99.lower), ms(p99.upper)],
      };
    }
    await running.stop();
    const report = await resultOf(running, 1000);
    if (report?.latency !== undefined) {
      self = {
        method: 'Date.now() at the XACK reply minus the ID ms',
        ...(report.latency as LatencySummary),
      };
    }
    const wm = watermarkLatencies(
      polls,
      produced.idMs,
      produced.idSeq,
      produced.sent,
      produced.firstMs + s.warmupMs,
    );
    const result: LiveResult = {
      contender: spec.name,
      offeredRate: s.rate,
      achievedRate: Math.round(produced.sent / ((produced.lastMs - produced.firstMs) / 1000)),
      sent: produced.sent,
      watermark: { ...wm.hist.summary(), unacked: wm.unacked },
      self,
    };
    task.done(
      `p50 ${result.watermark.p50Ms} ms, p99 ${result.watermark.p99Ms} ms (watermark); self p99 ${self?.p99Ms ?? '-'} ms`,
    );
    return result;
  } finally {
    polling = false;
    if (running !== null && running.child.exitCode === null) await running.stop();
    await redis.unlink(stream, out, dlq);
    await dropKeys(redis, `streamshard:${stream}:${group}:*`);
  }
}

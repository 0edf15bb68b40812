/**
 * Latency bookkeeping shared by the bench and its contender scripts:
 * - `MsHistogram`: exact counts in 1 ms bins (the resolution of the clocks involved: stream IDs and
 *   Date.now() are whole milliseconds), so percentiles need no sample array;
 * - `watermarkLatencies`: per-entry latency from the polled ack watermark (see redisState.ackWatermark);
 * - Prometheus histogram parsing with `histogram_quantile`-style interpolation inside a bucket.
 */
import type { StreamId } from './redisState.js';

const MAX_MS = 120_000;

export class MsHistogram {
  private readonly bins = new Uint32Array(MAX_MS + 1);
  count = 0;
  max = 0;

  add(ms: number): void {
    const v = ms < 0 ? 0 : Math.round(ms);
    this.bins[v > MAX_MS ? MAX_MS : v]++;
    this.count++;
    if (v > this.max) this.max = v;
  }

  /** The smallest value at or below which a share `q` (0..1) of the samples lie; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let v = 0; v <= MAX_MS; v++) {
      seen += this.bins[v] as number;
      if (seen >= rank) return v;
    }
    return MAX_MS;
  }

  summary(): LatencySummary {
    return { count: this.count, p50Ms: this.quantile(0.5), p99Ms: this.quantile(0.99), maxMs: this.max };
  }
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** One poll of the ack watermark: everything ≤ `wm` was acked by `t` (Date.now()). */
export interface WatermarkPoll {
  t: number;
  wm: StreamId;
}

/**
 * Latency of each produced entry = the first poll whose watermark covers it, minus the ms part of its ID
 * (the producer sets IDs explicitly to its clock when it writes them). Entries before `fromMs` (warm-up)
 * are skipped; entries never covered are counted in `unacked`.
 */
export function watermarkLatencies(
  polls: WatermarkPoll[],
  idMs: Float64Array,
  idSeq: Uint32Array,
  n: number,
  fromMs: number,
): { hist: MsHistogram; unacked: number } {
  const hist = new MsHistogram();
  let p = 0;
  let unacked = 0;
  for (let i = 0; i < n; i++) {
    const ms = idMs[i] as number;
    const seq = idSeq[i] as number;
    while (p < polls.length) {
      const wm = (polls[p] as WatermarkPoll).wm;
      if (ms < wm.ms || (ms === wm.ms && seq <= wm.seq)) break;
      p++;
    }
    if (ms < fromMs) continue;
    if (p === polls.length) unacked++;
    else hist.add((polls[p] as WatermarkPoll).t - ms);
  }
  return { hist, unacked };
}

/** A Prometheus histogram: cumulative counts per upper bound (`le`), ascending, `+Inf` last. */
export interface PromHistogram {
  buckets: Array<{ le: number; count: number }>;
  sum: number;
  count: number;
}

/** Reads histogram `name` (no labels besides `le`) from Prometheus text. */
export function parsePromHistogram(text: string, name: string): PromHistogram {
  const buckets: PromHistogram['buckets'] = [];
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_bucket{`)) {
      const m = /le="([^"]+)"\}\s+(\S+)/.exec(line);
      if (m)
        buckets.push({ le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), count: Number(m[2]) });
    } else if (line.startsWith(`${name}_sum `)) sum = Number(line.split(' ')[1]);
    else if (line.startsWith(`${name}_count `)) count = Number(line.split(' ')[1]);
  }
  buckets.sort((a, b) => a.le - b.le);
  return { buckets, sum, count };
}

/** `later − earlier`: the observations made between two scrapes. */
export function histogramDelta(later: PromHistogram, earlier: PromHistogram): PromHistogram {
  return {
    buckets: later.buckets.map((b, i) => ({ le: b.le, count: b.count - (earlier.buckets[i]?.count ?? 0) })),
    sum: later.sum - earlier.sum,
    count: later.count - earlier.count,
  };
}

/**
 * Quantile `q` like PromQL's histogram_quantile: find the bucket holding rank q·count and interpolate
 * linearly between its bounds (the lowest bucket starts at 0). In the `+Inf` bucket the answer is the
 * highest finite bound. The true value can be anywhere inside the bucket; report the bounds with it.
 */
export function promQuantile(h: PromHistogram, q: number): { value: number; lower: number; upper: number } {
  const rank = q * h.count;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank && h.count > 0) {
      if (b.le === Number.POSITIVE_INFINITY) return { value: prevLe, lower: prevLe, upper: b.le };
      const inBucket = b.count - prevCount;
      const frac = inBucket > 0 ? (rank - prevCount) / inBucket : 1;
      return { value: prevLe + (b.le - prevLe) * frac, lower: prevLe, upper: b.le };
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return { value: Number.NaN, lower: Number.NaN, upper: Number.NaN };
}

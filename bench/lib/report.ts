/**
 * Turns the measurements of one e2e run into per-contender summaries (medians over rounds), a Markdown
 * table (stdout; pasted as-is into BENCHMARKS.md) and the targets, each marked met or not.
 */
import type { DrainResult } from './drainRun.js';
import type { LiveResult } from './liveRun.js';

export interface Summary {
  contender: string;
  events: number;
  rounds: number;
  eventsPerSecond: number;
  perRound: number[];
  ratioToRaw: number;
  peakRssMb: number;
  cpuSecPerMEvents: number;
  redisCpuSecPerMEvents: number;
  resultsPerEvent: number;
  latency: LiveResult | null;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? (s[m] as number)
      : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function summarize(names: string[], drains: DrainResult[], live: LiveResult[]): Summary[] {
  const of = (name: string) => drains.filter((d) => d.contender === name);
  const rawRate = median(of('raw').map((d) => d.eventsPerSecond));
  return names.map((contender) => {
    const runs = of(contender);
    const rate = median(runs.map((d) => d.eventsPerSecond));
    const perM = (x: (d: DrainResult) => number) =>
      Number(median(runs.map((d) => (x(d) / d.events) * 1e6)).toFixed(2));
    return {
      contender,
      events: runs[0]?.events ?? 0,
      rounds: runs.length,
      eventsPerSecond: Math.round(rate),
      perRound: runs.map((d) => d.eventsPerSecond),
      ratioToRaw: Number((rate / rawRate).toFixed(3)),
      peakRssMb: Math.max(...runs.map((d) => d.peakRssMb)),
      cpuSecPerMEvents: perM((d) => d.cpuSec),
      redisCpuSecPerMEvents: perM((d) => d.redisCpuSec),
      resultsPerEvent: Number(median(runs.map((d) => d.resultsWritten / d.events)).toFixed(3)),
      latency: live.find((l) => l.contender === contender) ?? null,
    };
  });
}

const n = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

export function table(summaries: Summary[]): string {
  const head = [
    'contender',
    'events drained',
    'events/s (median)',
    '× raw',
    'peak RSS MB',
    'CPU s / M events',
    'Redis CPU s / M events',
    'results / event',
    'offered ev/s (achieved)',
    'p50 / p99 ms, watermark',
    'p50 / p99 ms, self-reported',
  ];
  const lines = [row(head), row(head.map((_, i) => (i === 0 ? '---' : '---:')))];
  for (const s of summaries) {
    const l = s.latency;
    const selfP = l?.self ? `${f(l.self.p50Ms, 1)} / ${f(l.self.p99Ms, 1)}` : '–';
    lines.push(
      row([
        s.contender,
        n(s.events),
        n(s.eventsPerSecond),
        f(s.ratioToRaw, 3),
        n(s.peakRssMb),
        f(s.cpuSecPerMEvents),
        f(s.redisCpuSecPerMEvents),
        f(s.resultsPerEvent, 3),
        l ? `${n(l.offeredRate)} (${n(l.achievedRate)})` : '–',
        l ? `${l.watermark.p50Ms} / ${l.watermark.p99Ms}` : '–',
        selfP,
      ]),
    );
  }
  return lines.join('\n');
}

export interface Target {
  target: string;
  figure: string;
  met: 'yes' | 'no' | 'n/a';
}

/** The throughput and latency targets, judged on streamshard with 2 shards. */
export function targets(summaries: Summary[]): Target[] {
  const get = (name: string) => summaries.find((s) => s.contender === name);
  const ss = get('streamshard-2');
  const out: Target[] = [];
  const ratio = (label: string, other: string, goal: number) => {
    const o = get(other);
    if (!ss || !o) return out.push({ target: label, figure: 'not measured', met: 'n/a' });
    const r = ss.eventsPerSecond / o.eventsPerSecond;
    return out.push({ target: label, figure: `${f(r, 2)} ×`, met: r >= goal ? 'yes' : 'no' });
  };
  ratio('streamshard-2 ≥ 0.85 × raw drain', 'raw', 0.85);
  ratio('streamshard-2 ≥ 15 × tutorial consumer', 'tutorial', 15);
  ratio('streamshard-2 ≥ 1.2 × single-threaded consumer', 'single', 1.2);
  const l = ss?.latency;
  if (!l) out.push({ target: 'p99 ≤ 50 ms at half load', figure: 'not measured', met: 'n/a' });
  else {
    const bucket = l.self?.p99BucketMs
      ? ` (bucket ${l.self.p99BucketMs[0]}–${l.self.p99BucketMs[1]} ms)`
      : '';
    const figure = `watermark ${l.watermark.p99Ms} ms; histogram ${f(l.self?.p99Ms ?? Number.NaN, 1)} ms${bucket}`;
    const upper = l.self?.p99BucketMs?.[1] ?? l.self?.p99Ms ?? Number.POSITIVE_INFINITY;
    const met = l.watermark.p99Ms <= 50 && upper <= 50 ? 'yes' : 'no';
    out.push({ target: 'streamshard-2 p99 ≤ 50 ms at half its max rate', figure, met });
  }
  return out;
}

export function targetTable(ts: Target[]): string {
  return [
    row(['target', 'this run', 'met']),
    row(['---', '---', '---']),
    ...ts.map((t) => row([t.target, t.figure, t.met])),
  ].join('\n');
}

/**
 * The scale bench's table: per contender the median over rounds (min–max beside it) of events/s, the
 * ratios to `1x1`, `raw` and `raw+write` (the median of the per-round ratios: runs of one round are
 * minutes apart, not tens of minutes, so they share more of the machine's load), the CPU per event of its processes (and of
 * their main threads) and of Redis, Redis commands per event, and the cores each side kept busy — the
 * figures that say what limits the configuration on this machine.
 */
import { median } from './report.js';
import type { ScaleResult } from './scaleRun.js';

export interface ScaleSummary {
  contender: string;
  rounds: number;
  eventsPerSecond: number;
  minEventsPerSecond: number;
  maxEventsPerSecond: number;
  perRound: number[];
  /** µs of CPU per event: all processes, their main threads, Redis. */
  processUs: number;
  mainThreadUs: number;
  redisUs: number;
  /** Median Redis command calls per event, in all and by command (the 8 largest). */
  commandsPerEvent: number;
  topCommands: Record<string, number>;
  /** Cores kept busy on average over the drain: processes, their main threads, Redis. */
  processCores: number;
  mainThreadCores: number;
  redisCores: number;
  resultsPerEvent: number;
  convergeMs: number | null;
  /** Median over rounds of this contender's events/s over the reference's in the same round. */
  ratioTo: Record<string, number>;
}

const REFERENCES = ['1x1', 'raw', 'raw+write'];

function perRoundRatio(runs: ScaleResult[], contender: string, reference: string): number {
  const ratios: number[] = [];
  for (const r of runs) {
    if (r.contender !== contender) continue;
    const ref = runs.find((x) => x.contender === reference && x.tag === r.tag);
    if (ref !== undefined) ratios.push(r.eventsPerSecond / ref.eventsPerSecond);
  }
  return Number(median(ratios).toFixed(2));
}

const r2 = (x: number) => Number(x.toFixed(2));
const r3 = (x: number) => Number(x.toFixed(3));

export function summarizeScale(names: string[], runs: ScaleResult[]): ScaleSummary[] {
  return names.map((contender) => {
    const rs = runs.filter((r) => r.contender === contender);
    const med = (f: (r: ScaleResult) => number) => median(rs.map(f));
    const perEventUs = (f: (r: ScaleResult) => number) => r2(med((r) => (f(r) / r.events) * 1e6));
    const cores = (f: (r: ScaleResult) => number) => r2(med((r) => f(r) / r.seconds));
    const total = (r: ScaleResult) => Object.values(r.commands).reduce((a, b) => a + b, 0);
    const names = new Set(rs.flatMap((r) => Object.keys(r.commands)));
    const byCommand = [...names]
      .map((c): [string, number] => [c, r3(med((r) => (r.commands[c] ?? 0) / r.events))])
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8);
    const rates = rs.map((r) => r.eventsPerSecond);
    return {
      contender,
      rounds: rs.length,
      eventsPerSecond: Math.round(median(rates)),
      minEventsPerSecond: Math.min(...rates),
      maxEventsPerSecond: Math.max(...rates),
      perRound: rates,
      processUs: perEventUs((r) => r.cpuSec),
      mainThreadUs: perEventUs((r) => r.mainThreadSec),
      redisUs: perEventUs((r) => r.redisCpuSec),
      commandsPerEvent: r3(med((r) => total(r) / r.events)),
      topCommands: Object.fromEntries(byCommand),
      processCores: cores((r) => r.cpuSec),
      mainThreadCores: cores((r) => r.mainThreadSec),
      redisCores: cores((r) => r.redisCpuSec),
      resultsPerEvent: Number(med((r) => r.resultsWritten / r.events).toFixed(3)),
      convergeMs: rs.length === 0 || rs[0]?.convergeMs === null ? null : med((r) => r.convergeMs ?? 0),
      ratioTo: Object.fromEntries(REFERENCES.map((ref) => [ref, perRoundRatio(runs, contender, ref)])),
    };
  });
}

const n = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const row = (cells: string[]) => `| ${cells.join(' | ')} |`;

export function scaleTable(summaries: ScaleSummary[]): string {
  const ratio = (s: ScaleSummary, to: string) => f(s.ratioTo[to] ?? Number.NaN, 2);
  const head = [
    'contender',
    'events/s median (min–max)',
    '× 1x1 (per round)',
    '× raw (per round)',
    '× raw+write (per round)',
    'process CPU µs/event (main thread)',
    'Redis CPU µs/event',
    'Redis cmds/event',
    'cores busy: processes (main threads) + Redis',
    'results/event',
  ];
  const lines = [row(head), row(head.map((_, i) => (i === 0 ? '---' : '---:')))];
  for (const s of summaries) {
    lines.push(
      row([
        s.contender,
        `${n(s.eventsPerSecond)} (${n(s.minEventsPerSecond)}–${n(s.maxEventsPerSecond)})`,
        ratio(s, '1x1'),
        ratio(s, 'raw'),
        ratio(s, 'raw+write'),
        `${f(s.processUs, 1)} (${f(s.mainThreadUs, 1)})`,
        f(s.redisUs, 1),
        f(s.commandsPerEvent, 3),
        `${f(s.processCores)} (${f(s.mainThreadCores)}) + ${f(s.redisCores)}`,
        f(s.resultsPerEvent, 3),
      ]),
    );
  }
  return lines.join('\n');
}

/** Redis commands per event by command, one line per contender. */
export function commandLines(summaries: ScaleSummary[]): string {
  return summaries
    .map(
      (s) =>
        `- ${s.contender}: ${Object.entries(s.topCommands)
          .map(([c, x]) => `${c} ${f(x, 3)}`)
          .join(', ')}`,
    )
    .join('\n');
}

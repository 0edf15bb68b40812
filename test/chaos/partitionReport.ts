/**
 * The report of the chaos run's `partitions` scenario (partitionScenario.ts): what was done to the
 * instances (kill -9, SIGTERM leaves, joins), what came out, every counter. Written as JSON and markdown
 * (test/chaos/last-report-partitions.{json,md}) and printed. The two-pipeline scenario's report is
 * report.ts; the checks of the output are the same (oracle.ts).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Failure } from './cluster.js';
import type { DeadLetterCheck, InputCheck, OutputCheck } from './oracle.js';
import type { Ownership } from './partitionInstances.js';

/** kill: kill -9 of an instance; leave: SIGTERM (graceful hand-over); join: a new instance starts. */
export type PartitionActionKind = 'kill' | 'leave' | 'join';

export interface PartitionActionRecord {
  n: number;
  /** Seconds since the start of the run. */
  at: number;
  kind: PartitionActionKind;
  /** A kill of the instance that joined just before, during its start (restore, claim, hand-over). */
  quick: boolean;
  consumer: string;
  pid: number;
  /** Join: started under the name of a dead instance (a restarted pod). */
  reusedName?: boolean;
  aliveBefore: number;
  aliveAfter: number;
  produced: number;
  duringProduction: boolean;
  /** Kill / leave: the partitions it led just before (from its /metrics). */
  ledBefore?: number[] | string;
  /** Kill: entries delivered to it and not acked, over all partitions, when it died. */
  victimPending?: number;
  /** Join: until it logged its first "ready" (it acquired a partition). */
  readyMs?: number;
  /** Leave: SIGTERM → exit, and the partitions it released on the way. */
  leaveMs?: number;
  released?: number;
  /** From the action until every partition was led by one live instance again, balanced. */
  settledMs?: number;
  note?: string;
}

export interface PerPartition {
  partition: number;
  stream: string;
  entries: number;
  /** XPENDING count at the end. */
  pending: number;
  deliveredAll: boolean;
  lastDelivered: string;
}

export interface PartitionChaosReport {
  ok: boolean;
  seed: number;
  events: number;
  keys: number;
  rate: number;
  partitions: number;
  leaseTtlMs: number;
  startedAt: string;
  seconds: { total: number; chaos: number; drain: number; oracle: number };
  input: InputCheck & {
    perPartition: number[];
    misrouted: number;
    byKind: Record<string, number>;
    producerRetries: number;
    producerAlreadyWritten: number;
  };
  actions: {
    total: number;
    kills: number;
    leaves: number;
    joins: number;
    quickKills: number;
    /** Kills of an instance that died holding entries read and not acked. */
    killsWithPending: number;
    duringProduction: number;
    joinsReusingAName: number;
    /** Fewest and most instances alive between actions. */
    aliveMin: number;
    aliveMax: number;
  };
  /** Settling times in ms per kind of action: how many were measured, median, max. */
  settled: Record<PartitionActionKind, Stats>;
  /** Hand-overs and acquisitions as the instances logged them. */
  figures: LogFigures;
  instancesStarted: number;
  output: OutputCheck;
  deadLetters: DeadLetterCheck;
  perPartition: PerPartition[];
  drained: boolean;
  ownershipAtEnd: Ownership;
  failures: Failure[];
  log: PartitionActionRecord[];
  logDir: string;
  redisDataCopy: string | null;
}

export interface Stats {
  n: number;
  medianMs: number | null;
  maxMs: number | null;
}

function stats(values: number[]): Stats {
  const v = [...values].sort((x, y) => x - y);
  if (v.length === 0) return { n: 0, medianMs: null, maxMs: null };
  return { n: v.length, medianMs: v[Math.floor(v.length / 2)] as number, maxMs: v[v.length - 1] as number };
}

/** The settling times of one kind of action. */
export function settleStats(log: PartitionActionRecord[], kind: PartitionActionKind): Stats {
  return stats(
    log.filter((a) => a.kind === kind && a.settledMs !== undefined).map((a) => a.settledMs as number),
  );
}

/** What the instances' own log lines say about moving partitions (every log file of the run). */
export interface LogFigures {
  /** `ready` per reason: from assigned to reading (`leaseWaitMs` + `startMs`). */
  acquired: Record<'free' | 'resume' | 'hand-over' | 'take-over', Stats>;
  /** `partition released` per reason: stop reading, commit, release (`handOverMs`). */
  released: Record<'rebalance' | 'stop', Stats>;
  /** `lease lost to another instance` lines (a paused owner fenced; none expected here). */
  leasesLost: number;
}

interface MoveLine {
  msg: string;
  reason?: string;
  leaseWaitMs?: number;
  startMs?: number;
  handOverMs?: number;
}

export function logFigures(logDir: string): LogFigures {
  const acq: Record<keyof LogFigures['acquired'], number[]> = {
    free: [],
    resume: [],
    'hand-over': [],
    'take-over': [],
  };
  const rel: Record<keyof LogFigures['released'], number[]> = { rebalance: [], stop: [] };
  let leasesLost = 0;
  for (const file of readdirSync(logDir).filter((f) => f.endsWith('.log'))) {
    for (const line of readFileSync(join(logDir, file), 'utf8').split('\n')) {
      if (line.includes('lease lost to another instance')) leasesLost++;
      const ready = line.includes('"msg":"ready"');
      if (!ready && !line.includes('"msg":"partition released"')) continue;
      const r = JSON.parse(line) as MoveLine;
      const why = (r.reason ?? '').split(' ')[0] as string;
      if (ready && why in acq) acq[why as keyof typeof acq].push((r.leaseWaitMs ?? 0) + (r.startMs ?? 0));
      if (!ready) rel[why.startsWith('rebalance') ? 'rebalance' : 'stop'].push(r.handOverMs ?? 0);
    }
  }
  const of = <K extends string>(rec: Record<K, number[]>) =>
    Object.fromEntries(Object.entries<number[]>(rec).map(([k, v]) => [k, stats(v)])) as Record<K, Stats>;
  return { acquired: of(acq), released: of(rel), leasesLost };
}

/** Everything that makes the run fail; empty when it passed. */
export function partitionProblems(r: Omit<PartitionChaosReport, 'ok'>): string[] {
  const problems: string[] = [];
  if (!r.input.matchesGenerator) problems.push(`input: ${r.input.firstMismatch}`);
  const o = r.output;
  const d = r.deadLetters;
  const counters: Record<string, number> = {
    lost: o.lost,
    duplicated: o.duplicated,
    wrong: o.wrong,
    'per-key order violations': o.orderViolations,
    'stuck pending': r.perPartition.reduce((n, p) => n + p.pending, 0),
    'dead letters lost': d.lost,
    'dead letters duplicated': d.duplicated,
    'dead letters wrong': d.wrong,
  };
  for (const [what, n] of Object.entries(counters)) if (n !== 0) problems.push(`${what} ${n}`);
  if (!r.drained) problems.push('not drained before the deadline');
  const codes = (rec: Record<string, number>) => JSON.stringify(Object.entries(rec).sort());
  if (codes(d.byCode.actual) !== codes(d.byCode.expected))
    problems.push("dead letters by code differ from the oracle's");
  if (!r.ownershipAtEnd.settled) problems.push(`ownership at the end: ${r.ownershipAtEnd.problem}`);
  for (const f of r.failures) problems.push(`failure: ${f.what}${f.consumer ? ` (${f.consumer})` : ''}`);
  return problems;
}

const ms = (s: Stats) => (s.n === 0 ? '—' : `${s.n} measured: median ${s.medianMs} ms, max ${s.maxMs} ms`);

/** The markdown summary. */
export function partitionsToMarkdown(r: PartitionChaosReport): string {
  const a = r.actions;
  const codes = (rec: Record<string, number>) =>
    Object.entries(rec)
      .sort()
      .map(([c, n]) => `${c} ${n}`)
      .join(', ') || '—';
  const lines = [
    `# Chaos run, partitions scenario: ${r.ok ? 'PASS' : 'FAIL'}`,
    '',
    `${r.startedAt} · seed ${r.seed} · ${r.events.toLocaleString('en')} events over ${r.keys} keys at ${r.rate}/s into ` +
      `${r.partitions} partitions · lease TTL ${r.leaseTtlMs} ms · ${r.seconds.total.toFixed(0)} s in all ` +
      `(chaos ${r.seconds.chaos.toFixed(0)} s, drain ${r.seconds.drain.toFixed(0)} s, oracle ${r.seconds.oracle.toFixed(0)} s)`,
    '',
    `Input: ${r.input.entries.toLocaleString('en')} entries (${Object.entries(r.input.byKind)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ')}; ${r.input.misrouted} written to the wrong partition on purpose); per partition ` +
      `${r.input.perPartition.join(' / ')}; ${r.input.matchesGenerator ? 'equal to the generated sequence' : `NOT the generated sequence: ${r.input.firstMismatch}`}; ` +
      `producer chunk retries ${r.input.producerRetries}.`,
    '',
    '## What was done',
    '',
    '| action | count | settled again (every partition led by one live instance, balanced) |',
    '| --- | ---: | --- |',
    `| kill -9 of an instance | ${a.kills} | ${ms(r.settled.kill)} |`,
    `| … of which right after it joined (during its start) | ${a.quickKills} | |`,
    `| … of which died holding unacked entries | ${a.killsWithPending} | |`,
    `| SIGTERM leave (hand-over) | ${a.leaves} | ${ms(r.settled.leave)} |`,
    `| join of a new instance | ${a.joins} | ${ms(r.settled.join)} |`,
    `| … of which under a dead instance's name | ${a.joinsReusingAName} | |`,
    `| **all actions** | **${a.total}** | |`,
    `| … of which while the producer was writing | ${a.duringProduction} | |`,
    '',
    `Instances alive between actions: ${a.aliveMin}–${a.aliveMax}; instances started: ${r.instancesStarted}.`,
    '',
    'As the instances logged it (per partition):',
    '',
    '| what | figures |',
    '| --- | --- |',
    `| graceful hand-over on a rebalance (stop reading, commit, release) | ${ms(r.figures.released.rebalance)} |`,
    `| graceful hand-over on SIGTERM | ${ms(r.figures.released.stop)} |`,
    `| acquired after a hand-over (assigned → reading) | ${ms(r.figures.acquired['hand-over'])} |`,
    `| taken over from a dead instance whose lease was still there (assigned → reading, TTL included) | ${ms(r.figures.acquired['take-over'])} |`,
    `| acquired free (start, after a leave, or once a dead holder's lease lapsed) | ${ms(r.figures.acquired.free)} |`,
    `| leases lost to another instance (fenced) | ${r.figures.leasesLost} |`,
    '',
    '## Results',
    '',
    '| counter | value |',
    '| --- | ---: |',
    `| expected / actual results | ${r.output.expected} / ${r.output.actual} |`,
    `| **lost / duplicated / wrong** | ${r.output.lost} / ${r.output.duplicated} / ${r.output.wrong} |`,
    `| **per-key order violations** | ${r.output.orderViolations} |`,
    `| **stuck pending** (per partition) | ${r.perPartition.map((p) => p.pending).join(' / ')} |`,
    `| every entry delivered to each partition's group | ${r.perPartition.every((p) => p.deliveredAll) ? 'yes' : 'NO'} |`,
    `| drained | ${r.drained ? 'yes' : 'NO'} |`,
    `| dead letters expected / actual | ${r.deadLetters.expected} / ${r.deadLetters.actual} |`,
    `| **dead letters lost / duplicated / wrong** | ${r.deadLetters.lost} / ${r.deadLetters.duplicated} / ${r.deadLetters.wrong} |`,
    `| dead letters by code, oracle | ${codes(r.deadLetters.byCode.expected)} |`,
    `| dead letters by code, actual | ${codes(r.deadLetters.byCode.actual)} |`,
    `| ownership at the end | ${r.ownershipAtEnd.settled ? 'settled' : `NOT settled: ${r.ownershipAtEnd.problem}`}: ${JSON.stringify(r.ownershipAtEnd.led)} |`,
    '',
  ];
  const problems = partitionProblems(r);
  lines.push('## Problems', '', ...(problems.length ? problems.map((p) => `- ${p}`) : ['none']), '');
  for (const f of r.failures) {
    lines.push(
      `- at ${f.at.toFixed(1)} s: **${f.what}** ${f.consumer ?? ''} ${f.pid ?? ''}: ${f.detail ?? ''}`,
    );
    if (f.stderrTail?.length)
      lines.push('', '  ```', ...f.stderrTail.slice(-10).map((l) => `  ${l}`), '  ```');
  }
  const examples = [
    ...Object.entries(r.output.examples),
    ...Object.entries(r.deadLetters.examples).map(([what, list]) => [`dead letters ${what}`, list] as const),
  ].map(([what, list]) => `- ${what}: \`${JSON.stringify(list).slice(0, 600)}\``);
  if (examples.length > 0) lines.push('## Examples', '', ...examples, '');
  lines.push(
    '## Actions',
    '',
    '| # | at s | action | instance | alive | led before | unacked | produced | note |',
    '| ---: | ---: | --- | --- | --- | --- | ---: | ---: | --- |',
  );
  for (const x of r.log) {
    const note = [
      x.quick ? 'quick' : '',
      x.duringProduction ? 'while producing' : '',
      x.reusedName ? 'reused name' : '',
      x.readyMs !== undefined ? `ready after ${x.readyMs} ms` : '',
      x.leaveMs !== undefined ? `exited after ${x.leaveMs} ms, released ${x.released}` : '',
      x.settledMs !== undefined ? `settled after ${x.settledMs} ms` : '',
      x.note ?? '',
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(
      `| ${x.n} | ${x.at.toFixed(1)} | ${x.kind} | ${x.consumer} (${x.pid}) | ${x.aliveBefore} → ${x.aliveAfter} | ${x.ledBefore === undefined ? '' : JSON.stringify(x.ledBefore)} | ${x.victimPending ?? ''} | ${x.produced} | ${note} |`,
    );
  }
  lines.push('', `Process logs: ${r.logDir}`, '');
  if (r.redisDataCopy) lines.push(`Redis data at the end: ${r.redisDataCopy}`, '');
  return lines.join('\n');
}

/** Writes `last-report-partitions.json` and `.md` into `dir`. */
export function writePartitionReport(r: PartitionChaosReport, dir: string): { json: string; md: string } {
  const json = join(dir, 'last-report-partitions.json');
  const md = join(dir, 'last-report-partitions.md');
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(md, partitionsToMarkdown(r));
  return { json, md };
}

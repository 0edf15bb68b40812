/**
 * The chaos run's report: what was done to the pipelines, what came out, every counter. Written as JSON
 * and as a markdown summary (test/chaos/last-report.{json,md}) and printed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Failure } from './cluster.js';
import type { PipelineKind } from './configs.js';
import type { DeadLetterCheck, InputCheck, OutputCheck } from './oracle.js';

/** restart / takeover: kill -9 of a leader; redis: restart redis-server; blip: CLIENT KILL of a pipeline's connections. */
export type ActionKind = 'restart' | 'takeover' | 'redis' | 'blip';

export interface ActionRecord {
  n: number;
  /** Seconds since the start of the run. */
  at: number;
  /** Wall clock (epoch ms) of the kill or restart itself: compare with output entry IDs. */
  killedAtMs?: number;
  kind: ActionKind;
  /** The pipeline whose leader was killed (null for a Redis restart). */
  pipeline: PipelineKind | null;
  /** Killed soon after the previous action on the same pipeline, while it replayed its backlog. */
  quick: boolean;
  victim?: { consumer: string; pid: number };
  successor?: { consumer: string; pid: number };
  /** The group(s) just before the kill: entries read and not acked (XPENDING). */
  backlog: Partial<Record<PipelineKind, number>>;
  /** Entries the killed leader had read and not acked when it died: > 0 means killed mid-batch. */
  victimPending?: number;
  /** The producer was still writing when the action began. */
  duringProduction?: boolean;
  /** Events the producer had written when the action began. */
  produced: number;
  /** Connection drop: how many connections were killed. */
  connectionsKilled?: number;
  /** Redis restart: how long it was down. */
  downMs?: number;
  /** Take-over: how long the standby had been waiting before the leader was killed. */
  standbyWaitedMs?: number;
  /** Until the successor logged "ready". */
  recoveredMs?: number;
  note?: string;
}

export interface PipelineReport {
  group: string;
  consumersStarted: number;
  leaderKills: number;
  restarts: number;
  takeovers: number;
  /** The group's last delivered ID, and whether it is the input's last entry. */
  lastDelivered: string;
  deliveredAll: boolean;
  /** XINFO GROUPS entries-read: informative only, Redis loses count across restarts. */
  entriesRead: number | null;
  /** XPENDING count at the end: entries delivered and never acked. */
  stuckPending: number;
  pendingByConsumer: Record<string, number>;
  /** Whether everything was read and acked (and, for windows, every window closed) before the deadline. */
  drained: boolean;
  output: OutputCheck;
  deadLetters: DeadLetterCheck;
  /** Instances answering /readyz at the end, by role. */
  rolesAtEnd: string[];
}

export interface ChaosReport {
  ok: boolean;
  seed: number;
  events: number;
  keys: number;
  rate: number;
  startedAt: string;
  seconds: { total: number; chaos: number; drain: number; oracle: number };
  takeoversEnabled: boolean;
  takeoversNote: string | null;
  redisUrl: string;
  input: InputCheck & {
    byKind: Record<string, number>;
    producerRetries: number;
    producerAlreadyWritten: number;
  };
  kills: {
    /** Every action: kill -9 of a leader or Redis restart. */
    total: number;
    leaderKills: number;
    restartsSameConsumer: number;
    takeovers: number;
    redisRestarts: number;
    /** CLIENT KILL of every connection of one pipeline (nothing restarted). */
    connectionDrops: number;
    quickKills: number;
    /** Kills of a leader that died holding entries read and not acked (mid-batch). */
    killsWithPending: number;
    /** Actions while the producer was still writing. */
    duringProduction: number;
  };
  pipelines: Record<PipelineKind, PipelineReport>;
  failures: Failure[];
  actions: ActionRecord[];
  logDir: string;
  /** A failed run keeps a copy of Redis' data directory (AOF) here, for a look with redis-server. */
  redisDataCopy: string | null;
}

/** The counters that must all be zero (and dead letters equal to the oracle's) for the run to pass. */
export function problemsOf(r: Omit<ChaosReport, 'ok'>): string[] {
  const problems: string[] = [];
  if (!r.input.matchesGenerator) problems.push(`input: ${r.input.firstMismatch}`);
  for (const [kind, p] of Object.entries(r.pipelines)) {
    const o = p.output;
    const d = p.deadLetters;
    const counters: Record<string, number> = {
      lost: o.lost,
      duplicated: o.duplicated,
      wrong: o.wrong,
      'per-key order violations': o.orderViolations,
      'stuck pending': p.stuckPending,
      'dead letters lost': d.lost,
      'dead letters duplicated': d.duplicated,
      'dead letters wrong': d.wrong,
    };
    for (const [what, n] of Object.entries(counters)) if (n !== 0) problems.push(`${kind}: ${what} ${n}`);
    if (!p.drained) problems.push(`${kind}: not drained before the deadline`);
    if (JSON.stringify(sorted(d.byCode.actual)) !== JSON.stringify(sorted(d.byCode.expected)))
      problems.push(`${kind}: dead letters by code differ from the oracle's`);
  }
  for (const f of r.failures) problems.push(`failure: ${f.what}${f.pipeline ? ` (${f.pipeline})` : ''}`);
  return problems;
}

function sorted(rec: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(rec).sort(([a], [b]) => (a < b ? -1 : 1)));
}

const codes = (rec: Record<string, number>) =>
  Object.entries(sorted(rec))
    .map(([c, n]) => `${c} ${n}`)
    .join(', ') || '—';

/** The markdown summary. */
export function toMarkdown(r: ChaosReport): string {
  const w = r.pipelines.windows;
  const o = r.pipelines.order;
  const row = (label: string, f: (p: PipelineReport) => string | number) =>
    `| ${label} | ${f(w)} | ${f(o)} |`;
  const lines = [
    `# Chaos run: ${r.ok ? 'PASS' : 'FAIL'}`,
    '',
    `${r.startedAt} · seed ${r.seed} · ${r.events.toLocaleString('en')} events over ${r.keys} keys at ${r.rate}/s · ` +
      `${r.seconds.total.toFixed(0)} s in all (chaos ${r.seconds.chaos.toFixed(0)} s, drain ${r.seconds.drain.toFixed(0)} s, oracle ${r.seconds.oracle.toFixed(0)} s)`,
    '',
    `Input: ${r.input.entries.toLocaleString('en')} entries (${Object.entries(r.input.byKind)
      .map(([k, n]) => `${n} ${k}`)
      .join(
        ', ',
      )}); ${r.input.matchesGenerator ? 'equal to the generated sequence' : `NOT the generated sequence: ${r.input.firstMismatch}`}; ` +
      `producer chunk retries ${r.input.producerRetries}, chunks found already written ${r.input.producerAlreadyWritten}.`,
    '',
    `Take-over: ${r.takeoversEnabled ? 'enabled' : `disabled (${r.takeoversNote ?? ''})`}.`,
    '',
    '## What was done',
    '',
    '| action | count |',
    '| --- | ---: |',
    `| kill -9 of a leader, restarted with the same consumer | ${r.kills.restartsSameConsumer} |`,
    `| kill -9 of a leader, a standby took over | ${r.kills.takeovers} |`,
    `| Redis restarts | ${r.kills.redisRestarts} |`,
    `| connection drops (CLIENT KILL of all of a pipeline's Redis connections) | ${r.kills.connectionDrops} |`,
    `| **all actions** | **${r.kills.total}** |`,
    `| … of which while the producer was writing | ${r.kills.duringProduction} |`,
    `| leader kills that died holding unacked entries (mid-batch) | ${r.kills.killsWithPending} of ${r.kills.leaderKills} |`,
    `| quick kills (right after the previous restart, during its replay) | ${r.kills.quickKills} |`,
    '',
    '## Results',
    '',
    '| counter | windows | order (pass-through) |',
    '| --- | ---: | ---: |',
    row('leader kills (restarts / take-overs)', (p) => `${p.leaderKills} (${p.restarts} / ${p.takeovers})`),
    row('instances started', (p) => p.consumersStarted),
    row('expected results', (p) => p.output.expected),
    row('actual results', (p) => p.output.actual),
    row('**lost**', (p) => p.output.lost),
    row('**duplicated**', (p) => p.output.duplicated),
    row('**wrong**', (p) => p.output.wrong),
    row('**per-key order violations**', (p) => p.output.orderViolations),
    row('**stuck pending**', (p) => p.stuckPending),
    row('every entry delivered to the group', (p) =>
      p.deliveredAll ? 'yes' : `NO (up to ${p.lastDelivered})`,
    ),
    row('entries-read (XINFO; Redis miscounts after restarts)', (p) => p.entriesRead ?? 'n/a'),
    row('drained', (p) => (p.drained ? 'yes' : 'NO')),
    row('dead letters expected / actual', (p) => `${p.deadLetters.expected} / ${p.deadLetters.actual}`),
    row('**dead letters lost / duplicated / wrong**', (p) =>
      [p.deadLetters.lost, p.deadLetters.duplicated, p.deadLetters.wrong].join(' / '),
    ),
    row('dead letters by code, oracle', (p) => codes(p.deadLetters.byCode.expected)),
    row('dead letters by code, actual', (p) => codes(p.deadLetters.byCode.actual)),
    row('roles at the end', (p) => p.rolesAtEnd.join(', ') || '—'),
    '',
  ];
  const problems = problemsOf(r);
  lines.push('## Problems', '', ...(problems.length ? problems.map((p) => `- ${p}`) : ['none']), '');
  if (r.failures.length > 0) {
    lines.push('## Failures', '');
    for (const f of r.failures) {
      lines.push(
        `- at ${f.at.toFixed(1)} s: **${f.what}**${f.pipeline ? ` — ${f.pipeline}` : ''}${f.consumer ? ` consumer ${f.consumer}` : ''}${f.pid ? ` pid ${f.pid}` : ''}: ${f.detail ?? ''}`,
      );
      if (f.stderrTail?.length)
        lines.push('', '  ```', ...f.stderrTail.slice(-10).map((l) => `  ${l}`), '  ```');
    }
    lines.push('');
  }
  const examples = Object.entries(r.pipelines).flatMap(([kind, p]) =>
    [
      ...Object.entries(p.output.examples),
      ...Object.entries(p.deadLetters.examples).map(
        ([what, list]) => [`dead letters ${what}`, list] as const,
      ),
    ].map(([what, list]) => `- ${kind} ${what}: \`${JSON.stringify(list).slice(0, 600)}\``),
  );
  if (examples.length > 0) lines.push('## Examples', '', ...examples, '');
  lines.push(
    '## Actions',
    '',
    '| # | at s | action | pipeline | killed (unacked it held) | successor | group pending before | produced | note |',
    '| ---: | ---: | --- | --- | --- | --- | --- | ---: | --- |',
  );
  for (const a of r.actions) {
    const backlog = Object.entries(a.backlog)
      .map(([k, b]) => `${k} ${b ?? '?'}`)
      .join('; ');
    const note = [
      a.quick ? 'quick' : '',
      a.duringProduction ? 'while producing' : '',
      a.downMs !== undefined ? `down ${a.downMs} ms` : '',
      a.connectionsKilled !== undefined ? `${a.connectionsKilled} connections killed` : '',
      a.standbyWaitedMs !== undefined ? `standby waited ${a.standbyWaitedMs} ms` : '',
      a.recoveredMs !== undefined ? `ready after ${a.recoveredMs} ms` : '',
      a.note ?? '',
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(
      `| ${a.n} | ${a.at.toFixed(1)} | ${a.kind} | ${a.pipeline ?? '—'} | ${a.victim ? `${a.victim.consumer} pid ${a.victim.pid} (${a.victimPending ?? '?'})` : '—'} | ${a.successor ? `${a.successor.consumer} (${a.successor.pid})` : '—'} | ${backlog} | ${a.produced} | ${note} |`,
    );
  }
  lines.push('', `Process logs: ${r.logDir}`, '');
  if (r.redisDataCopy) {
    lines.push(
      `Redis data at the end: ${r.redisDataCopy} (\`redis-server --appendonly yes --dir <that dir> --port 0 …\`)`,
      '',
    );
  }
  return lines.join('\n');
}

/** Writes `last-report.json` and `last-report.md` into `dir`. */
export function writeReport(r: ChaosReport, dir: string): { json: string; md: string } {
  const json = join(dir, 'last-report.json');
  const md = join(dir, 'last-report.md');
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(md, toMarkdown(r));
  return { json, md };
}

/**
 * The pipeline graph the status page draws, from the validated config: where events come from, the
 * stages in order with their key settings, where results and dead letters go.
 *
 *   source stream (group) ──► stage 1 ──► … ──► stage n ──► sink stream | stdout
 *                                                      └──► dead-letter stream
 *
 * Durations stay in ms, named so (`sizeMs`); the page formats them.
 */
import type { PipelineConfig } from '../../config/load.js';

type Stage = PipelineConfig['stages'][number];
type Condition = NonNullable<Extract<Stage, { filter: unknown }>['filter']['where']>[number];

export type StageNode =
  /** `where`: the comparisons, or `when <expression>`. */
  | { kind: 'filter'; where: string[] }
  /** `details`: `set total = amount * 1.2`, `rename a → b`, `remove c`. */
  | { kind: 'map'; details: string[] }
  | { kind: 'dedup'; ttlMs: number; maxEntries: number; by: 'id' | 'content' }
  | { kind: 'rateLimit'; per: 'key' | 'shard'; rate: string; burst: number; onExcess: 'drop' | 'deadLetter' }
  | {
      kind: 'order';
      versionPath: string;
      maxBuffered: number;
      timeoutMs: number;
      onGap: 'deadLetter' | 'skip';
    }
  | { kind: 'project'; key: string; fields: string[]; ttlMs: number | null }
  | {
      kind: 'window';
      type: 'tumbling' | 'hopping' | 'session' | 'sliding';
      /** Window length; null for sessions. */
      sizeMs: number | null;
      /** Distance between window starts (hopping; equal to size for tumbling); null otherwise. */
      advanceMs: number | null;
      /** Inactivity gap that ends a session; null for the other types. */
      gapMs: number | null;
      graceMs: number;
      idleCloseMs: number;
      aggregates: string[];
    };

export interface PipelineGraph {
  source: { stream: string; group: string; consumer: string; keyField: string; encoding: string };
  shards: number;
  stages: StageNode[];
  sink: { type: 'stream'; stream: string } | { type: 'stdout'; stream: null };
  deadLetter: { stream: string };
}

export function pipelineGraph(c: PipelineConfig): PipelineGraph {
  return {
    source: {
      stream: c.source.stream,
      group: c.source.group,
      consumer: c.source.consumer,
      keyField: c.key.field,
      encoding: c.body.encoding,
    },
    shards: c.shards,
    stages: c.stages.map(stageNode),
    sink:
      c.sink.type === 'stdout' ? { type: 'stdout', stream: null } : { type: 'stream', stream: c.sink.stream },
    deadLetter: { stream: c.deadLetter.stream },
  };
}

function stageNode(s: Stage): StageNode {
  if ('filter' in s) {
    const f = s.filter;
    return {
      kind: 'filter',
      where: f.when !== undefined ? [`when ${f.when}`] : (f.where ?? []).map(conditionText),
    };
  }
  if ('map' in s) {
    const m = s.map;
    const details = [
      ...Object.entries(m.rename ?? {}).map(([from, to]) => `rename ${from} → ${to}`),
      ...(m.remove ?? []).map((f) => `remove ${f}`),
      ...Object.entries(m.set ?? {}).map(([f, e]) => `set ${f} = ${e}`),
    ];
    return { kind: 'map', details };
  }
  if ('dedup' in s)
    return { kind: 'dedup', ttlMs: s.dedup.ttl, maxEntries: s.dedup.maxEntries, by: s.dedup.by };
  if ('rateLimit' in s) {
    const r = s.rateLimit;
    const rate = `${r.rate.events}/${r.rate.perMs === 1000 ? 's' : `${r.rate.perMs}ms`}`;
    return { kind: 'rateLimit', per: r.per, rate, burst: r.burst, onExcess: r.onExcess };
  }
  if ('order' in s) {
    const o = s.order;
    return {
      kind: 'order',
      versionPath: o.versionPath,
      maxBuffered: o.maxBuffered,
      timeoutMs: o.timeout,
      onGap: o.onGap,
    };
  }
  if ('project' in s) {
    const p = s.project;
    const fields = Object.entries(p.fields).map(([name, r]) => `${name}=${r.fn}(${r.field ?? ''})`);
    return { kind: 'project', key: p.key, fields, ttlMs: p.ttl ?? null };
  }
  const w = s.window;
  return {
    kind: 'window',
    type: w.type,
    sizeMs: w.size ?? null,
    advanceMs: w.type === 'tumbling' || w.type === 'hopping' ? (w.advance ?? w.size ?? null) : null,
    gapMs: w.gap ?? null,
    graceMs: w.grace,
    idleCloseMs: w.idleClose,
    aggregates: [
      'count',
      ...w.aggregates.filter((a) => a.fn !== 'count').map((a) => `${a.fn}(${a.field ?? ''})`),
    ],
  };
}

/** `amount gt 10`, `type in ["a","b"]`, `user exists`. */
function conditionText(c: Condition): string {
  if (c.op === 'exists') return `${c.field} ${c.value === false ? 'missing' : 'exists'}`;
  return `${c.field} ${c.op} ${JSON.stringify(c.value)}`;
}

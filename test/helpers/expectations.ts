/**
 * Whole-output comparisons between what the pipeline wrote and what the reference oracle computed.
 */
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { TestNames } from './pipeline.js';
import { readStream } from './pipeline.js';
import {
  deadLetterOf,
  diffWindows,
  type Expected,
  type FieldPair,
  NO_DIFF,
  pairsOf,
  reference,
  sortBySourceId,
  sortWindows,
} from './reference.js';

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Reads the input stream back and runs the oracle over it. */
export async function expectedFor(redis: Redis, n: TestNames, configText: string): Promise<Expected> {
  const input = await readStream(redis, n.input);
  return reference(input, parseConfig(configText, '(test)', { env: {} }));
}

/** Sink entries grouped by their `key` field, each group in stream order. */
function byKey(rows: FieldPair[][], keyField: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const key = r.find((p) => p[0] === keyField)?.[1] ?? '';
    let list = out.get(key);
    if (!list) {
      list = [];
      out.set(key, list);
    }
    list.push(JSON.stringify(r));
  }
  return out;
}

/** Pass-through: per key, the same entries in the same order. Returns the first few differences. */
export function diffPassThrough(expected: FieldPair[][], actual: FieldPair[][], keyField = 'key'): string[] {
  const exp = byKey(expected, keyField);
  const act = byKey(actual, keyField);
  const problems: string[] = [];
  for (const [key, list] of exp) {
    const got = act.get(key) ?? [];
    if (JSON.stringify(got) === JSON.stringify(list)) continue;
    const i = list.findIndex((e, j) => got[j] !== e);
    problems.push(
      `key ${key}: expected ${list.length} entries, got ${got.length}; first difference at #${i === -1 ? got.length : i}`,
    );
  }
  for (const key of act.keys()) if (!exp.has(key)) problems.push(`key ${key}: not expected at all`);
  return problems.slice(0, 10);
}

/**
 * Reads the sink and dead-letter streams and compares them, whole, with the oracle's output:
 * window results as a set keyed by (key, window_start), pass-through entries per key in order, dead
 * letters by source entry ID with their original fields and code.
 */
export async function expectOutputsMatch(
  redis: Redis,
  n: TestNames,
  expected: Expected,
  mode: 'windows' | 'pass-through',
): Promise<void> {
  const sink = (await readStream(redis, n.sink)).map((e) => pairsOf(e.fields));
  if (mode === 'windows') {
    expect(diffWindows(expected.sink, sink)).toEqual(NO_DIFF);
    // the diff being empty already means equal; this is the literal whole-output comparison
    expect(sameJson(sortWindows(sink), sortWindows(expected.sink))).toBe(true);
  } else {
    expect(diffPassThrough(expected.sink, sink)).toEqual([]);
    expect(sink.length).toBe(expected.sink.length);
  }
  await expectDeadLettersMatch(redis, n, expected);
}

export async function expectDeadLettersMatch(redis: Redis, n: TestNames, expected: Expected): Promise<void> {
  const dlq = (await readStream(redis, n.dlq)).map(deadLetterOf);
  // every entry ends with error = "<CODE>: <message>" and source_id
  const malformed = dlq
    .filter((d) => d.tail.join() !== 'error,source_id' || !/^E_[A-Z_]+: \S/.test(d.error))
    .slice(0, 5);
  expect(malformed).toEqual([]);
  const actual = sortBySourceId(dlq).map(({ sourceId, code, fields }) => ({ sourceId, code, fields }));
  const want = sortBySourceId(expected.deadLetters);
  const codes = (rows: Array<{ code: string }>) => {
    const c: Record<string, number> = {};
    for (const r of rows) c[r.code] = (c[r.code] ?? 0) + 1;
    return c;
  };
  expect(codes(actual)).toEqual(codes(want));
  if (!sameJson(actual, want)) {
    // show a readable difference (the first entries that differ), not two huge arrays
    const wantById = new Map(want.map((w) => [w.sourceId, w]));
    const gotById = new Map(actual.map((a) => [a.sourceId, a]));
    const missing = want.filter((w) => !gotById.has(w.sourceId)).slice(0, 5);
    const extra = actual.filter((a) => !wantById.has(a.sourceId)).slice(0, 5);
    const changed = actual
      .filter((a) => wantById.has(a.sourceId) && !sameJson(a, wantById.get(a.sourceId)))
      .slice(0, 5)
      .map((a) => ({ expected: wantById.get(a.sourceId), actual: a }));
    expect({ count: actual.length, missing, extra, changed }).toEqual({
      count: want.length,
      missing: [],
      extra: [],
      changed: [],
    });
  }
  expect(sameJson(actual, want)).toBe(true);
}

/**
 * Partitioned pipelines in tests: the oracle runs once per partition over that partition's stream, with
 * the partition's config (its key-group range and shards, partition/scope.ts) — each partition is an
 * independent pipeline — and the outputs are compared whole with what all instances wrote together.
 * Entry IDs of different partition streams may be equal, so dead letters compare as a multiset of whole
 * entries (source ID, code and fields), not by source ID.
 */
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { type PipelineConfig, parseConfig } from '../../src/config/load.js';
import { partitionConfigs } from '../../src/partition/scope.js';
import { diffPassThrough } from './expectations.js';
import { readStream, type TestNames } from './pipeline.js';
import {
  deadLetterOf,
  diffWindows,
  type Expected,
  NO_DIFF,
  pairsOf,
  reference,
  sortWindows,
} from './reference.js';

export function parsedConfig(configText: string): PipelineConfig {
  return parseConfig(configText, '(test)', { env: {} });
}

/** Every partition's stream key, in partition order. */
export function partitionStreams(configText: string): string[] {
  return partitionConfigs(parsedConfig(configText)).map((c) => c.source.stream);
}

/** The oracle over every partition stream, each with its partition's config; outputs concatenated. */
export async function expectedForPartitions(redis: Redis, configText: string): Promise<Expected> {
  // counts and projections are not merged across partitions here (the tests compare the streams)
  const out: Expected = {
    sink: [],
    deadLetters: [],
    counts: undefined as unknown as Expected['counts'],
    projections: undefined as unknown as Expected['projections'],
  };
  for (const pc of partitionConfigs(parsedConfig(configText))) {
    const e = reference(await readStream(redis, pc.source.stream), pc);
    out.sink.push(...e.sink);
    out.deadLetters.push(...e.deadLetters);
  }
  return out;
}

/** Window results as a set, pass-through per key in order, dead letters as a multiset of whole entries. */
export async function expectPartitionedOutputsMatch(
  redis: Redis,
  n: TestNames,
  expected: Expected,
  mode: 'windows' | 'pass-through',
): Promise<void> {
  const sink = (await readStream(redis, n.sink)).map((e) => pairsOf(e.fields));
  if (mode === 'windows') {
    expect(diffWindows(expected.sink, sink)).toEqual(NO_DIFF);
    expect(JSON.stringify(sortWindows(sink)) === JSON.stringify(sortWindows(expected.sink))).toBe(true);
  } else {
    expect(diffPassThrough(expected.sink, sink)).toEqual([]);
    expect(sink.length).toBe(expected.sink.length);
  }
  const dlq = (await readStream(redis, n.dlq)).map(deadLetterOf);
  const whole = (rows: Array<{ sourceId: string; code: string; fields: unknown }>) =>
    rows.map((r) => JSON.stringify([r.sourceId, r.code, r.fields])).sort();
  const got = whole(dlq);
  const want = whole(expected.deadLetters);
  const codes = (rows: string[]) => {
    const c: Record<string, number> = {};
    for (const r of rows) {
      const code = (JSON.parse(r) as [string, string])[1];
      c[code] = (c[code] ?? 0) + 1;
    }
    return c;
  };
  expect(codes(got)).toEqual(codes(want));
  const gotSet = new Set(got);
  const wantSet = new Set(want);
  const missing = want.filter((w) => !gotSet.has(w)).slice(0, 3);
  const extra = got.filter((g) => !wantSet.has(g)).slice(0, 3);
  expect({ count: got.length, missing, extra }).toEqual({ count: want.length, missing: [], extra: [] });
}

/**
 * The `partitions` scenario's input and oracle: the partition streams read back from Redis (what the
 * instances really read), checked against the generator entry by entry — the i-th generated entry must be
 * the entry `<idMs>-<i + 1>` of the stream its key routes to (partitionConfigs.ts) — and the expected
 * output computed per partition with that partition's config (its key-group range and shard), as
 * test/helpers/partitioned.ts does, then concatenated: keys never span partitions, and source IDs are
 * unique across the streams.
 */
import type { Redis } from 'ioredis';
import type { PipelineConfig } from '../../src/config/load.js';
import { generateEvents, type GeneratorOptions } from '../../src/tools/produce/generator.js';
import { type Expected, reference, type StreamEntry } from '../helpers/reference.js';
import { type InputCheck, interner, scanStream } from './oracle.js';
import { misrouted, partitionOfEntry } from './partitionConfigs.js';

export interface PartitionedInput {
  /** Each partition stream's entries, in stream order. */
  byPartition: StreamEntry[][];
  check: InputCheck & {
    /** Entries per partition stream. */
    perPartition: number[];
    /** Entries written to the wrong partition on purpose. */
    misrouted: number;
  };
}

/** Reads every partition stream and checks the lot against a fresh run of the generator. */
export async function readPartitionedInput(
  redis: Redis,
  streams: readonly string[],
  gen: GeneratorOptions,
  idMs: number,
): Promise<PartitionedInput> {
  const intern = interner();
  const byPartition: StreamEntry[][] = [];
  for (const stream of streams) {
    const entries: StreamEntry[] = [];
    await scanStream(redis, stream, (id, fields) => entries.push({ id, fields: fields.map(intern) }));
    byPartition.push(entries);
  }
  // Walk the generated sequence; each entry must be next in line in its partition's stream.
  const next = byPartition.map(() => 0);
  let firstMismatch: string | null = null;
  let wrongPartition = 0;
  let i = 0;
  for (const want of generateEvents(gen)) {
    const p = partitionOfEntry(want.fields, i);
    if (misrouted(i)) wrongPartition++;
    const at = next[p] as number;
    const got = (byPartition[p] as StreamEntry[])[at];
    const id = `${idMs}-${i + 1}`;
    if (got === undefined) {
      firstMismatch = `entry #${i} (${id}) is missing from partition ${p}'s stream`;
      break;
    }
    if (got.id !== id) {
      firstMismatch = `partition ${p}'s entry #${at} has ID ${got.id}, expected ${id}`;
      break;
    }
    if (
      want.fields.length !== got.fields.length ||
      want.fields.some((f, j) => !Buffer.from(f).equals(got.fields[j] as Buffer))
    ) {
      firstMismatch = `entry #${i} (${id}) in partition ${p} differs from the generated one`;
      break;
    }
    next[p] = at + 1;
    i++;
  }
  const total = byPartition.reduce((n, e) => n + e.length, 0);
  if (firstMismatch === null) {
    const extra = byPartition.findIndex((e, p) => e.length !== next[p]);
    if (extra >= 0) firstMismatch = `partition ${extra}'s stream has entries that were never generated`;
    else if (total < gen.count) firstMismatch = `only ${total} of ${gen.count} entries are in the streams`;
  }
  return {
    byPartition,
    check: {
      entries: total,
      expected: gen.count,
      matchesGenerator: firstMismatch === null,
      firstMismatch,
      perPartition: byPartition.map((e) => e.length),
      misrouted: wrongPartition,
    },
  };
}

/**
 * The oracle per partition, outputs concatenated. Frees each partition's entries once used (the caller's
 * arrays are emptied), so that the largest runs hold one partition's copies at a time.
 */
export function expectPartitioned(
  input: PartitionedInput,
  configs: readonly PipelineConfig[],
): Pick<Expected, 'sink' | 'deadLetters'> {
  const out: Pick<Expected, 'sink' | 'deadLetters'> = { sink: [], deadLetters: [] };
  configs.forEach((pc, p) => {
    const entries = input.byPartition[p] as StreamEntry[];
    const e = reference(entries, pc);
    for (const row of e.sink) out.sink.push(row);
    for (const d of e.deadLetters) out.deadLetters.push(d);
    entries.length = 0;
  });
  return out;
}

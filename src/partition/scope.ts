/**
 * One partition's view of a pipeline's config: what the engine of partition p runs with. Its
 * `source.stream` is the partition's stream, so every key derived from it — the consumer group, the
 * lease, the checkpoint namespace (redis/checkpointKeys.ts) — is the partition's own and, with the
 * default template, under the partition's Redis Cluster hash tag; `partition` is its key-group range,
 * which its router and shards split (routing/hash.ts). With one partition the config is returned as is:
 * the input stream and every key keep their names.
 */
import type { PipelineConfig } from '../config/load.js';
import { keyGroupRange, partitionOf, partitionStream } from './partitionOf.js';

export function partitionConfig(c: PipelineConfig, p: number): PipelineConfig {
  const count = c.source.partitions;
  if (count === 1) return c;
  const base = c.partition.stream;
  const { from, to } = keyGroupRange(p, c.keyGroups, count);
  return {
    ...c,
    source: { ...c.source, stream: partitionStream(c.source.partitionStream, base, p, count) },
    partition: { index: p, from, to, stream: base },
  };
}

/** Every partition's config, in partition order. */
export function partitionConfigs(c: PipelineConfig): PipelineConfig[] {
  return Array.from({ length: c.source.partitions }, (_, p) => partitionConfig(c, p));
}

/**
 * The input stream an entry with this key belongs in: the stream itself with one partition, else its
 * partition's (a keyless entry goes with the empty key, as `produce --partitions` writes it).
 */
export function inputStreamOf(c: PipelineConfig, key: Uint8Array | null): string {
  const count = c.source.partitions;
  if (count === 1) return c.partition.stream;
  const p = partitionOf(key ?? new Uint8Array(0), c.keyGroups, count);
  return partitionStream(c.source.partitionStream, c.partition.stream, p, count);
}

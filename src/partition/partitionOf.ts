/**
 * Key → partition: the one function a producer in any language must match to write an event to the
 * stream its partition reads.
 *
 *   keyGroup  = fnv1a32(key bytes) mod keyGroups              (the same key groups as the checkpoint's)
 *   partition = floor(keyGroup × partitions / keyGroups)      (partition p owns a contiguous key-group range)
 *
 * fnv1a32: offset basis 0x811c9dc5; for each byte: h = (h XOR byte) × 0x01000193 mod 2^32. The key's
 * bytes are exactly what the producer puts in the key field (UTF-8 for text). Test vectors are in
 * docs/partitions.md and test/partitions.test.ts.
 *
 * A key group belongs to exactly one partition, and partitions never re-hash keys: the checkpoint is per
 * key group, so the state of a key always lives under the partition that reads its events.
 */
import { fnv1a, keyGroupOf } from '../routing/hash.js';

/** The partition that owns key group `keyGroup`. */
export function partitionOfKeyGroup(keyGroup: number, keyGroups: number, partitions: number): number {
  return Math.floor((keyGroup * partitions) / keyGroups);
}

/** The key groups partition `p` owns: `[from, to)`. */
export function keyGroupRange(
  p: number,
  keyGroups: number,
  partitions: number,
): { from: number; to: number } {
  // The smallest g with floor(g × P / G) ≥ p is ceil(p × G / P).
  const from = Math.ceil((p * keyGroups) / partitions);
  const to = Math.ceil(((p + 1) * keyGroups) / partitions);
  return { from, to };
}

const encoder = new TextEncoder();

/**
 * The partition of a key, for producers written in Node (exported from the package):
 * `partitionOf('order-17', 256, 8)`. A string key is hashed as its UTF-8 bytes.
 */
export function partitionOf(key: string | Uint8Array, keyGroups: number, partitions: number): number {
  const bytes = typeof key === 'string' ? encoder.encode(key) : key;
  return partitionOfKeyGroup(keyGroupOf(fnv1a(bytes), keyGroups), keyGroups, partitions);
}

/**
 * The stream key of partition `p`. With one partition it is `stream` itself (today's layout, unchanged).
 * With more, the template's `{stream}` and `{p}` are replaced; the default template
 * `{stream}:{{stream}:{p}}` gives `orders:{orders:7}`: the braces are a Redis Cluster hash tag, so every
 * key of the partition — its stream, and the state whose names contain the stream's — hashes to one slot.
 */
export function partitionStream(template: string, stream: string, p: number, partitions: number): string {
  if (partitions === 1) return stream;
  return template.replaceAll('{stream}', stream).replaceAll('{p}', String(p));
}

/** The default template of partition stream keys. */
export const DEFAULT_PARTITION_TEMPLATE = '{stream}:{{stream}:{p}}';

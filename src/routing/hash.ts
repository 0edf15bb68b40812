/**
 * Key → key group → shard. The hash is FNV-1a (32-bit) over the key's UTF-8 bytes: stable across
 * processes, versions and platforms (it is part of the checkpoint layout), and computed straight from the
 * Buffer Redis returned, so the main thread never decodes a key to a string.
 *
 * Key groups are fixed for a pipeline (Flink's idea): state is checkpointed per key group, and a shard owns
 * a contiguous range of them, so a later change of the shard count moves whole key groups, never
 * re-hashes keys.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over bytes[start, end). */
export function fnv1a(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/**
 * Mixes a hash's high bits into its low ones (murmur3's finaliser step), for open-addressing tables that
 * index by the low bits: FNV-1a of keys that differ only in their last characters (`u1`, `u2`, …) would
 * otherwise crowd together.
 */
export function spread(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

export function keyGroupOf(hash: number, keyGroups: number): number {
  return hash % keyGroups;
}

/**
 * Shard k owns key groups [k*G/S, (k+1)*G/S) — of the partition's range `[from, to)` when the input is
 * partitioned (each partition's engine splits its own range over its shards; the whole range otherwise).
 */
export function shardOfKeyGroup(
  keyGroup: number,
  keyGroups: number,
  shards: number,
  from = 0,
  to = keyGroups,
): number {
  return Math.floor(((keyGroup - from) * shards) / (to - from));
}

/** The key groups a shard owns, in order (of the partition's range `[from, to)`, see above). */
export function keyGroupsOfShard(
  shard: number,
  keyGroups: number,
  shards: number,
  from = 0,
  to = keyGroups,
): number[] {
  const out: number[] = [];
  for (let g = from; g < to; g++) if (shardOfKeyGroup(g, keyGroups, shards, from, to) === shard) out.push(g);
  return out;
}

/** The key groups of each shard of a config's partition (the whole input when it is not partitioned). */
export function shardKeyGroups(c: {
  keyGroups: number;
  shards: number;
  partition: { from: number; to: number };
}): number[][] {
  return Array.from({ length: c.shards }, (_, s) =>
    keyGroupsOfShard(s, c.keyGroups, c.shards, c.partition.from, c.partition.to),
  );
}

const encoder = new TextEncoder();

/** Convenience for tests and tools: the key group of a string key. */
export function keyGroupOfKey(key: string, keyGroups: number): number {
  return keyGroupOf(fnv1a(encoder.encode(key)), keyGroups);
}

/** Convenience for tests and tools: the shard of a string key. */
export function shardOfKey(key: string, keyGroups: number, shards: number): number {
  return shardOfKeyGroup(keyGroupOfKey(key, keyGroups), keyGroups, shards);
}

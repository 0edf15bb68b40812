/**
 * The checkpoint as the shards see it, and what it costs Redis.
 *
 * Per shard: its key groups' checkpoint is loaded with the engine's own `loadCheckpoint`
 * (commit/restore.ts) and restored into a {@link Shard}, exactly as a leader does at start — so stream
 * time, open windows and remembered dedup IDs are the figures the shard would hold after a restart
 * (expired dedup IDs not counted, a stream time too far in the future capped). This reads the whole
 * checkpoint, one shard at a time: on a large state it costs what a restart's restore costs.
 *
 * Size: `MEMORY USAGE` (Redis' estimate, sampling large aggregates) of every key of the checkpoint, named
 * by CheckpointKeys: per key group its window index, dedup log and open window hashes, plus the
 * pipeline's stream-time, meta, applied, lease and epoch keys.
 */
import type { Redis } from 'ioredis';
import { loadCheckpoint } from '../commit/restore.js';
import type { PipelineConfig } from '../config/load.js';
import type { CheckpointKeys, StateKeyKind } from '../redis/checkpointKeys.js';
import { isReplyError } from '../redis/errors.js';
import { shardKeyGroups } from '../routing/hash.js';
import { Shard } from '../shard/shard.js';

export interface ShardState {
  shard: number;
  /** First and last key group of the shard (shards own contiguous ranges). */
  keyGroups: [number, number];
  /** The shard's stream time (epoch ms), or null before its first event. */
  streamTime: number | null;
  /** Stream time behind Redis' clock, in seconds (negative when ahead), or null. */
  streamTimeBehindSeconds: number | null;
  /** Open window starts (buckets). */
  openWindows: number;
  /** Open (key, window) pairs: the rows a window close will emit. */
  openWindowKeys: number;
  /** Event IDs the dedup stage remembers; null when the checkpoint could not be restored. */
  dedupIds: number | null;
  /** Why the shard's checkpoint could not be restored with this config (as a leader would fail), or null. */
  problem: string | null;
}

/** Per-shard state from the checkpoint, with `shards` as the config resolves it. */
export async function shardStates(
  redis: Redis,
  keys: CheckpointKeys,
  config: PipelineConfig,
  nowMs: number,
): Promise<{ shards: ShardState[]; windowKeys: string[] }> {
  const shards: ShardState[] = [];
  const windowKeys: string[] = [];
  for (let s = 0; s < config.shards; s++) {
    const groups = shardKeyGroups(config)[s] as number[];
    const state = await loadCheckpoint(redis, keys, groups);
    let shard: Shard | null = null;
    let problem: string | null = null;
    try {
      shard = new Shard(config, { state, now: nowMs });
    } catch (e) {
      problem = (e as Error).message; // e.g. the window stage changed since the checkpoint was written
    }
    const starts = new Set<number>();
    let rows = 0;
    for (const w of state.windows) {
      starts.add(w.start);
      rows += w.fields.length / 2;
      windowKeys.push(keys.window(w.keyGroup, w.start));
    }
    const t = state.streamTime;
    shards.push({
      shard: s,
      keyGroups: [groups[0] ?? 0, groups[groups.length - 1] ?? 0],
      streamTime: t,
      streamTimeBehindSeconds: t === null ? null : (nowMs - t) / 1000,
      openWindows: shard?.openWindows ?? starts.size,
      openWindowKeys: rows,
      dedupIds: shard?.dedupIds ?? null,
      problem,
    });
  }
  return { shards, windowKeys };
}

export interface CheckpointSize {
  /** Keys that exist. */
  keys: number;
  /** Sum of MEMORY USAGE, bytes. */
  bytes: number;
  byKind: Partial<Record<StateKeyKind, { keys: number; bytes: number }>>;
}

/**
 * MEMORY USAGE of the checkpoint's keys (`windowKeys`: the open window hashes found by
 * {@link shardStates}); null when Redis refuses MEMORY USAGE.
 */
export async function checkpointSize(
  redis: Redis,
  keys: CheckpointKeys,
  keyGroups: number,
  windowKeys: string[],
): Promise<CheckpointSize | null> {
  const names = [keys.streamTime(), keys.meta(), keys.applied(), keys.lease(), keys.epoch(), ...windowKeys];
  for (let g = 0; g < keyGroups; g++) names.push(keys.windowIndex(g), keys.dedup(g));
  const size: CheckpointSize = { keys: 0, bytes: 0, byKind: {} };
  const CHUNK = 1000;
  for (let i = 0; i < names.length; i += CHUNK) {
    const chunk = names.slice(i, i + CHUNK);
    const p = redis.pipeline();
    for (const k of chunk) p.memory('USAGE', k);
    const replies = (await p.exec()) ?? [];
    for (let j = 0; j < chunk.length; j++) {
      const [err, bytes] = replies[j] ?? [null, null];
      if (err) {
        if (isReplyError(err)) return null;
        throw err;
      }
      if (bytes === null) continue; // no such key
      const kind = keys.kindOf(chunk[j] as string);
      if (kind === null) continue;
      const k = (size.byKind[kind] ??= { keys: 0, bytes: 0 });
      k.keys++;
      k.bytes += Number(bytes);
      size.keys++;
      size.bytes += Number(bytes);
    }
  }
  return size;
}

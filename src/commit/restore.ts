/**
 * Loads a shard's checkpoint: for each of its key groups the open windows, the dedup memory and the
 * stream time. Runs once per shard at start, before the shard's pending entries are re-read.
 */
import type { Redis } from 'ioredis';
import { unwrap } from '../redis/connect.js';
import type { RestoredState } from '../shard/protocol.js';
import type { CheckpointKeys } from './checkpointKeys.js';

export async function loadCheckpoint(
  redis: Redis,
  keys: CheckpointKeys,
  keyGroups: number[],
): Promise<RestoredState> {
  const index = redis.pipeline();
  for (const g of keyGroups) {
    index.smembers(keys.windowIndex(g));
    index.lrangeBuffer(keys.dedup(g), 0, -1);
  }
  index.hmget(keys.streamTime(), ...keyGroups.map(String));
  const replies = unwrap(await index.exec());

  const state: RestoredState = { windows: [], dedupLogs: [], streamTime: null };
  const bucketReads: Array<{ keyGroup: number; start: number }> = [];
  keyGroups.forEach((g, i) => {
    for (const s of replies[2 * i] as string[]) bucketReads.push({ keyGroup: g, start: Number(s) });
    const chunks = replies[2 * i + 1] as Buffer[];
    if (chunks.length > 0) state.dedupLogs.push({ keyGroup: g, chunks });
  });
  for (const t of replies[replies.length - 1] as Array<string | null>) {
    if (t === null) continue;
    const n = Number(t);
    if (state.streamTime === null || n > state.streamTime) state.streamTime = n;
  }

  if (bucketReads.length > 0) {
    const buckets = redis.pipeline();
    for (const b of bucketReads) buckets.hgetall(keys.window(b.keyGroup, b.start));
    const hashes = unwrap(await buckets.exec());
    bucketReads.forEach((b, i) => {
      const h = hashes[i] as Record<string, string>;
      const fields: string[] = [];
      for (const k in h) fields.push(k, h[k] as string);
      if (fields.length > 0) state.windows.push({ ...b, fields });
    });
  }
  return state;
}

/**
 * Loads a shard's checkpoint: for each of its key groups the open windows, the dedup memory, the
 * rate-limit buckets and the stream time. Runs once per shard at start, before the shard's pending entries are re-read.
 */
import type { Redis } from 'ioredis';
import { unwrap } from '../redis/connect.js';
import type { RestoredState } from '../shard/protocol.js';
import type { RateLimitState } from '../shard/stages/rateLimit/rateLimitStage.js';
import type { CheckpointKeys } from '../redis/checkpointKeys.js';

export async function loadCheckpoint(
  redis: Redis,
  keys: CheckpointKeys,
  keyGroups: number[],
): Promise<RestoredState> {
  const index = redis.pipeline();
  for (const g of keyGroups) {
    index.smembers(keys.windowIndex(g));
    index.lrangeBuffer(keys.dedup(g), 0, -1);
    index.callBuffer('HGETALL', keys.rateLimit(g)); // flat [field, value, …]: see the buckets below
    index.callBuffer('HGETALL', keys.order(g));
  }
  index.hmget(keys.shardRateLimit(), ...keyGroups.map(String));
  index.hmget(keys.streamTime(), ...keyGroups.map(String));
  const replies = unwrap(await index.exec());

  const rateLimit: RateLimitState = { buckets: [], shard: [] };
  const order: NonNullable<RestoredState['order']> = [];
  const state: RestoredState = { windows: [], dedupLogs: [], streamTime: null, rateLimit, order };
  const bucketReads: Array<{ keyGroup: number; start: number }> = [];
  keyGroups.forEach((g, i) => {
    for (const s of replies[4 * i] as string[]) bucketReads.push({ keyGroup: g, start: Number(s) });
    const chunks = replies[4 * i + 1] as Buffer[];
    if (chunks.length > 0) state.dedupLogs.push({ keyGroup: g, chunks });
    const held = replies[4 * i + 3] as Buffer[];
    if (held.length > 0) order.push({ keyGroup: g, fields: held });
    const limits = replies[4 * i + 2] as Buffer[];
    if (limits.length > 0) rateLimit.buckets.push({ keyGroup: g, fields: limits });
  });
  for (const v of replies[replies.length - 2] as Array<string | null>)
    if (v !== null) rateLimit.shard.push(v);
  for (const t of replies[replies.length - 1] as Array<string | null>) {
    if (t === null) continue;
    const n = Number(t);
    if (state.streamTime === null || n > state.streamTime) state.streamTime = n;
  }

  if (bucketReads.length > 0) {
    const buckets = redis.pipeline();
    // Each field is a key's exact bytes. Not `hgetall`/`hgetallBuffer`: ioredis turns their reply into an
    // object, whose property names are the fields decoded as UTF-8 — `\xff` and `\xfe` would both become
    // U+FFFD and merge. Its reply transformers are looked up by the lower-case command name, so
    // `callBuffer('HGETALL')` returns the flat `[field, value, …]` Buffers (test/binaryKeys.test.ts).
    for (const b of bucketReads) buckets.callBuffer('HGETALL', keys.window(b.keyGroup, b.start));
    const hashes = unwrap(await buckets.exec());
    bucketReads.forEach((b, i) => {
      const fields = hashes[i];
      if (!Array.isArray(fields) || !fields.every((f): f is Buffer => Buffer.isBuffer(f))) {
        throw new Error(
          `checkpoint bucket ${keys.window(b.keyGroup, b.start)}: expected HGETALL to return a flat list ` +
            'of byte strings; the Redis client changed how it answers HGETALL',
        );
      }
      if (fields.length > 0) state.windows.push({ ...b, fields });
    });
  }
  return state;
}

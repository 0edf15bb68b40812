/**
 * The checkpoint's compatibility check at start-up (main thread): what the stored state means depends on
 * settings that must not change under it, recorded as a fingerprint in `<ns>:meta`
 * (redis/checkpointKeys.ts).
 */
import type { Redis } from 'ioredis';
import type { PipelineConfig } from '../config/load.js';
import type { CheckpointKeys } from '../redis/checkpointKeys.js';

/**
 * What the stored state means depends on the key-group count (which key group a key is in) and on the
 * window stage (bucket starts, aggregate slots). A checkpoint written under other settings would be
 * misread, so the first start records them and every later start compares.
 */
export function fingerprintOf(c: PipelineConfig): string {
  const w = c.stages.find((s) => 'window' in s);
  const window =
    w && 'window' in w
      ? {
          type: w.window.type,
          size: w.window.size,
          advance: w.window.advance ?? w.window.size,
          aggregates: w.window.aggregates,
        }
      : null;
  // layout 2: the dedup memory is a log per key group (a list), no longer a sorted set
  // partitions: each partition's state holds its own key-group range; a different count changes the ranges
  const partitions = c.source.partitions > 1 ? { partitions: c.source.partitions } : {};
  return JSON.stringify({ layout: 2, keyGroups: c.keyGroups, window, ...partitions });
}

export async function checkFingerprint(redis: Redis, keys: CheckpointKeys, c: PipelineConfig): Promise<void> {
  const want = fingerprintOf(c);
  const stored = await redis.hget(keys.meta(), 'fingerprint');
  if (stored === null) {
    await redis.hset(keys.meta(), 'fingerprint', want);
    return;
  }
  if (stored !== want) {
    throw new Error(
      `the checkpoint under ${keys.ns}:* was written with other keyGroups or window settings (${stored}); ` +
        `now ${want}. Use a new source.group, or delete the state with \`streamshard reset\`, to start over ` +
        'with the new settings.',
    );
  }
}

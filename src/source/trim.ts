/**
 * Safe input trimming (`source.trim`): removes only entries that no consumer group on the stream still
 * needs. For each group the floor is its oldest pending entry, or — with nothing pending — the entry after
 * its last-delivered ID (entries after it are not read yet). The stream is trimmed with `XTRIM MINID ~`
 * below the lowest floor of all groups. `~` trims whole internal nodes only, so it may keep a few more
 * entries, never fewer.
 *
 * One script, `TRIM_SAFE_1` (redis/scripts/trimSafe-1.ts), so no group can read, ack or be created
 * between computing the floor and trimming. (Redis 8.2's ack-aware trimming, `XTRIM … ACKED`, does the
 * same on the server; this works from 6.2.)
 */
import type { Redis } from 'ioredis';
import { trimSafeScript } from '../redis/scripts/trimSafe-1.js';

/** Trims `stream` safely: returns the MINID used ('' when no group exists) and the entries removed. */
export async function trimSafely(redis: Redis, stream: string): Promise<{ floor: string; trimmed: number }> {
  const [floor, trimmed] = (await trimSafeScript.run(redis, [stream], [])) as [string, number];
  return { floor, trimmed: Number(trimmed) };
}

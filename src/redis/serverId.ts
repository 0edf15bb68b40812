import type { Redis } from 'ioredis';

/**
 * The server's `run_id`: another one after Redis restarted or another server (a promoted replica)
 * answers on the same address. Null when the server does not report one.
 */
export async function serverRunId(redis: Redis): Promise<string | null> {
  const info = await redis.info('server');
  return /run_id:(\w+)/.exec(info)?.[1] ?? null;
}

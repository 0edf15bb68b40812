/** Redis helpers for integration tests: the shared server's URL, unique names, clients, polling. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';

/** URL of the Redis the global setup started (or `REDIS_URL`). */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** `prefix:<random hex>`: a stream/group/key name no other test uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}:${randomBytes(6).toString('hex')}`;
}

/** A connected RESP2 client; the caller quits it. */
export async function connect(): Promise<Redis> {
  const redis = new Redis(redisUrl(), { protocol: 2, enableAutoPipelining: false, lazyConnect: false });
  await new Promise<void>((resolve, reject) => {
    if (redis.status === 'ready') return resolve();
    const onError = (err: Error): void => {
      redis.off('ready', onReady);
      redis.disconnect();
      reject(new Error(`cannot connect to ${redisUrl()}: ${err.message}`));
    };
    const onReady = (): void => {
      redis.off('error', onError);
      resolve();
    };
    redis.once('ready', onReady);
    redis.once('error', onError);
  });
  return redis;
}

/**
 * Polls `fn` every 25 ms until it returns something other than `undefined`/`false`, and returns that.
 * Tests wait for conditions this way, never for a fixed time.
 *
 * @throws Error naming `what` (and the last error `fn` threw, if any) after `timeoutMs`
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

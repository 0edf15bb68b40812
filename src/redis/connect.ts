/**
 * Redis connections. Every connection speaks RESP2 explicitly (ioredis 6 defaults to RESP3) and never
 * auto-pipelines. A blocking read holds its connection for up to `block` ms, so the reader gets a
 * connection of its own (redis/respConnection.ts, not ioredis); commits and metrics share this one.
 */
import { Redis } from 'ioredis';
import { RespConnection, TLS_MISMATCH } from './respConnection.js';
import { backoffMs } from '../util/backoff.js';
import { withTimeout } from '../util/deadline.js';
import { maskSecrets, redactUrl } from './url.js';

export { redactUrl } from './url.js';

export interface ConnectOptions {
  url: string;
  /** Shown in CLIENT LIST, e.g. `streamshard:reader`. */
  name: string;
  connectTimeoutMs: number;
  /** Called on connection state changes (for readiness and logs). */
  onState?: (state: 'ready' | 'down', error?: Error) => void;
  /** Fail a command that got no reply within this many ms (a half-open connection). @defaultValue none */
  commandTimeoutMs?: number;
}

export function connectRedis(opts: ConnectOptions): Redis {
  const redis = new Redis(opts.url, {
    protocol: 2,
    enableAutoPipelining: false,
    connectionName: opts.name,
    connectTimeout: opts.connectTimeoutMs,
    // Reconnect forever with capped exponential backoff; callers decide what a failed command means.
    retryStrategy: (times) => backoffMs(times),
    maxRetriesPerRequest: null,
    lazyConnect: true,
    ...(opts.commandTimeoutMs !== undefined ? { commandTimeout: opts.commandTimeoutMs } : {}),
  });
  redis.on('ready', () => opts.onState?.('ready'));
  redis.on('close', () => opts.onState?.('down'));
  redis.on('error', (e: Error) => opts.onState?.('down', e));
  return redis;
}

/**
 * Connects a lazily created client. ioredis rejects a failed first connect with "Connection is closed"
 * whatever happened; this rejects with the cause its 'error' event reported (ECONNREFUSED, WRONGPASS, …).
 */
export async function openRedis(redis: Redis): Promise<void> {
  let cause: Error | null = null;
  const onError = (e: Error) => {
    cause ??= e;
  };
  redis.on('error', onError);
  try {
    await redis.connect();
  } catch (e) {
    throw cause ?? e;
  } finally {
    redis.off('error', onError);
  }
}

export interface WaitForRedisOptions {
  url: string;
  name: string;
  /** One attempt's limit. */
  connectTimeoutMs: number;
  /** Give up after this long (`redis.startTimeout`). */
  startTimeoutMs: number;
  /** Stops waiting (a stop signal during start-up). */
  signal?: AbortSignal;
  /** Called after each failed attempt that will be retried, with its cause (secrets masked). */
  onRetry?: (cause: string, attempt: number, retryInMs: number) => void;
}

/** Thrown by {@link waitForRedis} when its signal aborted the wait. */
export class StartAborted extends Error {
  constructor() {
    super('start-up stopped while waiting for Redis');
    this.name = 'StartAborted';
  }
}

/**
 * Start-up: waits until Redis accepts a connection and its handshake (AUTH, SELECT, CLIENT SETNAME),
 * retrying with capped exponential backoff (100 ms doubling to 5 s) for up to `startTimeoutMs` — so a
 * pipeline started before its Redis (a Kubernetes roll-out) waits instead of crash-looping. Each failure
 * has its real cause (ECONNREFUSED, WRONGPASS, NOAUTH, a TLS mismatch). A TLS mismatch is not retried:
 * waiting cannot fix a URL.
 *
 * @throws Error naming the URL (secrets masked) and the last cause, after `startTimeoutMs`
 */
export async function waitForRedis(o: WaitForRedisOptions): Promise<void> {
  const deadline = Date.now() + o.startTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    if (o.signal?.aborted) throw new StartAborted();
    const left = Math.max(1, deadline - Date.now());
    const conn = new RespConnection({
      url: o.url,
      name: o.name,
      connectTimeoutMs: Math.min(o.connectTimeoutMs, left),
    });
    conn.on('error', () => {}); // the cause comes with connect()'s rejection
    let cause: string;
    let fatal: boolean;
    try {
      await conn.connect();
      return;
    } catch (e) {
      cause = maskSecrets((e as Error).message, o.url);
      fatal = (e as Error).name === TLS_MISMATCH;
    } finally {
      conn.disconnect();
    }
    const retryIn = Math.min(backoffMs(attempt - 1, 100, 5000), deadline - Date.now());
    if (fatal || retryIn <= 0) {
      const within = fatal
        ? ''
        : ` within redis.startTimeout (${o.startTimeoutMs} ms, ${attempt} attempt(s))`;
      throw new Error(`cannot connect to Redis at ${redactUrl(o.url)}${within}: ${cause}`);
    }
    o.onRetry?.(cause, attempt, retryIn);
    await abortableSleep(retryIn, o.signal);
  }
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}

/**
 * QUIT within `ms`, else drop the connection; drops it at once when not connected (a QUIT would wait in
 * the offline queue until Redis is back).
 */
export async function closeRedis(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready' && (await withTimeout(redis.quit(), ms))) return;
  redis.disconnect();
}

/** The replies of a pipeline or transaction, with the first error thrown (null: discarded or aborted). */
export function unwrap(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (results === null) throw new Error('Redis pipeline was discarded');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

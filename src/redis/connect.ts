/**
 * Redis connections. Every connection speaks RESP2 explicitly (ioredis 6 defaults to RESP3) and never
 * auto-pipelines. A blocking read holds its connection for up to `block` ms, so the reader gets a
 * connection of its own (redis/respConnection.ts, not ioredis); commits and metrics share this one.
 */
import { Redis } from 'ioredis';

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
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    maxRetriesPerRequest: null,
    lazyConnect: true,
    ...(opts.commandTimeoutMs !== undefined ? { commandTimeout: opts.commandTimeoutMs } : {}),
  });
  redis.on('ready', () => opts.onState?.('ready'));
  redis.on('close', () => opts.onState?.('down'));
  redis.on('error', (e: Error) => opts.onState?.('down', e));
  return redis;
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** The replies of a pipeline or transaction, with the first error thrown (null: discarded or aborted). */
export function unwrap(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (results === null) throw new Error('Redis pipeline was discarded');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

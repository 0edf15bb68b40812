/**
 * What every contender script shares: its settings from the environment (set by bench/lib/contender.ts),
 * the Redis connection, the ready/result lines on stdout, SIGTERM handling, and ack-latency recording.
 *
 * Protocol: a script prints `{"event":"ready","t":<epoch ms>}` right before its first XREADGROUP. In
 * `drain` mode it reads until a read returns nothing (or `LIMIT` entries), prints its result line and
 * waits for SIGTERM — so the bench samples its CPU and memory before it exits. In `live` mode it reads
 * (BLOCK 100) until SIGTERM, then prints its result line with the latencies it measured and exits.
 */
import { Redis } from 'ioredis';
import { MsHistogram } from '../lib/latency.js';

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

export const settings = {
  url: env('REDIS_URL'),
  stream: env('STREAM'),
  group: env('GROUP'),
  consumer: 'c1',
  live: env('MODE', 'drain') === 'live',
  /** Entries to read in drain mode; 0 = until the stream is exhausted. */
  limit: Number(env('LIMIT', '0')),
  warmupMs: Number(env('WARMUP_MS', '0')),
  windowMs: Number(env('WINDOW_MS', '10000')),
  graceMs: Number(env('GRACE_MS', '1000')),
  out: env('OUT_STREAM', ''),
};

/** RESP2 and no auto-pipelining, like streamshard's own connections. */
export function connect(): Redis {
  return new Redis(settings.url, { protocol: 2, enableAutoPipelining: false, maxRetriesPerRequest: null });
}

/** XREADGROUP arguments after the command name (BLOCK 100 in live mode so SIGTERM is seen promptly). */
export function readArgs(count: number): Array<string | number> {
  const s = settings;
  const block = s.live ? ['BLOCK', 100] : [];
  return ['GROUP', s.group, s.consumer, 'COUNT', count, ...block, 'STREAMS', s.stream, '>'];
}

/** The entries of an XREADGROUP reply read with callBuffer: `[id, [name, value, …]]`. */
export function entriesOf(reply: unknown): Array<[Buffer, Buffer[]]> {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  return ((reply[0] as [Buffer, unknown])[1] as Array<[Buffer, Buffer[]]>) ?? [];
}

let stopRequested = false;
let onStop: (() => void) | null = null;
process.once('SIGTERM', () => {
  stopRequested = true;
  onStop?.();
});

export const stopping = (): boolean => stopRequested;

export function waitForStop(): Promise<void> {
  return stopRequested ? Promise.resolve() : new Promise((r) => (onStop = r));
}

export function ready(): void {
  process.stdout.write(`${JSON.stringify({ event: 'ready', t: Date.now() })}\n`);
}

export function report(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ event: 'result', ...result })}\n`);
}

/** The ms part of a stream ID given as bytes (`1700000000000-3`). */
export function idMs(id: Buffer): number {
  let ms = 0;
  for (let i = 0; i < id.length; i++) {
    const c = id[i] as number;
    if (c === 45) break; // '-'
    ms = ms * 10 + (c - 48);
  }
  return ms;
}

/**
 * Ack latency as the contender sees it: Date.now() when its XACK (or the call carrying it) replied, minus
 * the entry ID's ms (the bench's live producer sets IDs to its clock). Entries written in the first
 * `WARMUP_MS` after the first entry seen are not counted.
 */
export class AckLatency {
  readonly hist = new MsHistogram();
  private from = Number.NaN;

  recordAcked(ids: Buffer[], now: number): void {
    if (!settings.live || ids.length === 0) return;
    if (Number.isNaN(this.from)) this.from = idMs(ids[0] as Buffer) + settings.warmupMs;
    for (const id of ids) {
      const ms = idMs(id);
      if (ms >= this.from) this.hist.add(now - ms);
    }
  }
}

/** Drain: report and idle until SIGTERM. Live: report with latencies. Then exit. */
export async function finish(
  redis: Redis,
  t0: number,
  processed: number,
  latency: AckLatency,
  extra: Record<string, unknown> = {},
): Promise<never> {
  const seconds = (Date.now() - t0) / 1000;
  const ru = process.resourceUsage();
  const result = {
    processed,
    seconds,
    cpuSec: (ru.userCPUTime + ru.systemCPUTime) / 1e6,
    ...extra,
    ...(settings.live ? { latency: latency.hist.summary() } : {}),
  };
  if (settings.live) report(result);
  else {
    report(result);
    await waitForStop();
  }
  redis.disconnect();
  process.exit(0);
}

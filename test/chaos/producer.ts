/**
 * The chaos run's producer: {@link generateEvents} written to the input stream at a fixed rate while the
 * harness kills processors and restarts Redis under it.
 *
 * `produce()` (src/tools/produce/producer.ts) cannot be used as is: it lets Redis choose the IDs and has
 * no way to resume, so a chunk whose reply was lost in a Redis restart would be written twice or not at
 * all (and ioredis re-sends unanswered commands after a reconnect by itself). Here every entry gets an
 * explicit ID `<idMs>-<i + 1>` (i = its 0-based position in the generated sequence), and a chunk is one
 * script call that first looks at the stream's last ID: a script runs atomically and the server writes it
 * to its AOF (appendfsync always) before replying, so the chunk is either wholly in the stream or not at
 * all, and a retried chunk that already landed is recognised and skipped. One chunk is in flight at a
 * time, so chunks land in order. The stream therefore ends up holding exactly the generated sequence,
 * whatever was retried — `readInput` (oracle.ts) checks that.
 */
import type { Redis } from 'ioredis';
import {
  type EventKind,
  type GeneratorOptions,
  generateEvents,
  kindCounts,
} from '../../src/tools/produce/generator.js';

/**
 * KEYS[1] = stream; ARGV[1] = the IDs' ms part, ARGV[2] = sequence number of the chunk's first entry;
 * then per entry: its field count c and its c names and values. Returns the number of entries added:
 * 0 when the stream already ends at or after the chunk's first entry (an earlier try of the same chunk
 * landed).
 */
export const XADD_CHUNK_1 = `local key, ms, first = KEYS[1], ARGV[1], tonumber(ARGV[2])
local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
if #last > 0 then
  local lms, lseq = string.match(last[1][1], '^(%d+)-(%d+)$')
  if lms == ms and tonumber(lseq) >= first then return 0 end
end
local i, n, seq = 3, #ARGV, first
while i <= n do
  local c = tonumber(ARGV[i])
  redis.call('XADD', key, ms .. '-' .. seq, unpack(ARGV, i + 1, i + c))
  i = i + c + 1
  seq = seq + 1
end
return seq - first`;

/**
 * {@link XADD_CHUNK_1} over several streams (the partition streams): KEYS = the streams; ARGV[1], ARGV[2]
 * as there; then per entry: the 1-based index of its stream in KEYS, its field count c and its c names and
 * values. One script call, so the chunk lands in all its streams or in none; it already landed when any
 * stream ends at or after the chunk's first sequence number (sequence numbers are global, so every
 * earlier chunk's are smaller).
 */
export const XADD_CHUNK_N = `local ms, first = ARGV[1], tonumber(ARGV[2])
for k = 1, #KEYS do
  local last = redis.call('XREVRANGE', KEYS[k], '+', '-', 'COUNT', 1)
  if #last > 0 then
    local lms, lseq = string.match(last[1][1], '^(%d+)-(%d+)$')
    if lms == ms and tonumber(lseq) >= first then return 0 end
  end
end
local i, n, seq = 3, #ARGV, first
while i <= n do
  local s, c = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  redis.call('XADD', KEYS[s], ms .. '-' .. seq, unpack(ARGV, i + 2, i + 1 + c))
  i = i + c + 2
  seq = seq + 1
end
return seq - first`;

export interface ChaosProducerOptions {
  /** Events per second. */
  rate: number;
  /** The ms part of every entry ID. */
  idMs: number;
  /** Give up when one chunk has not been written after this long. @defaultValue 120 s */
  chunkDeadlineMs?: number;
  /**
   * Write to several streams instead of one (the `stream` argument is then unused): entry i goes to
   * `streams[route(fields, i)]`, with {@link XADD_CHUNK_N}.
   */
  routed?: { streams: string[]; route: (fields: ReadonlyArray<string | Buffer>, i: number) => number };
}

export interface ChaosProducerResult {
  produced: number;
  byKind: Record<EventKind, number>;
  seconds: number;
  /** Chunk calls that failed and were tried again (the connection dropped under them). */
  retries: number;
  /** Chunk calls that found their chunk in the stream already (a retry, or ioredis' own re-send). */
  alreadyWritten: number;
  /** The errors seen, first few. */
  errors: string[];
}

export interface ChaosProducer {
  /** Entries acknowledged by Redis so far. */
  progress(): number;
  done: Promise<ChaosProducerResult>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Chunks per second: smooth enough for a rate, few enough calls. */
const CHUNKS_PER_SECOND = 20;

/** Starts writing `gen.count` generated events to `stream` at `opts.rate` per second. */
export function startProducer(
  redis: Redis,
  stream: string,
  gen: GeneratorOptions,
  opts: ChaosProducerOptions,
): ChaosProducer {
  let produced = 0;
  const routed = opts.routed;
  const run = async (): Promise<ChaosProducerResult> => {
    const events = generateEvents(gen);
    const chunkSize = Math.max(1, Math.min(1000, Math.ceil(opts.rate / CHUNKS_PER_SECOND)));
    const byKind = kindCounts();
    const result = { retries: 0, alreadyWritten: 0, errors: [] as string[] };
    const t0 = performance.now();
    let sent = 0;
    while (sent < gen.count) {
      const wait = t0 + (sent / opts.rate) * 1000 - performance.now();
      if (wait > 0) await sleep(wait);
      const args: Array<string | Buffer> = [String(opts.idMs), String(sent + 1)];
      let n = 0;
      while (n < chunkSize) {
        const next = events.next();
        if (next.done) break;
        byKind[next.value.kind]++;
        const { fields } = next.value;
        if (routed) args.push(String(routed.route(fields, sent + n) + 1));
        args.push(String(fields.length), ...fields);
        n++;
      }
      if (n === 0) break;
      const keys = routed ? routed.streams : [stream];
      await writeChunk(redis, keys, args, opts.chunkDeadlineMs ?? 120_000, result);
      sent += n;
      produced = sent;
    }
    return { produced, byKind, seconds: (performance.now() - t0) / 1000, ...result };
  };
  return { progress: () => produced, done: run() };
}

async function writeChunk(
  redis: Redis,
  keys: string[],
  args: Array<string | Buffer>,
  deadlineMs: number,
  stats: { retries: number; alreadyWritten: number; errors: string[] },
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    try {
      // 0 also on a first try: ioredis re-sends a command whose reply a reconnect lost, by itself
      const script = keys.length === 1 ? XADD_CHUNK_1 : XADD_CHUNK_N;
      const added = Number(await redis.eval(script, keys.length, ...keys, ...args));
      if (added === 0) stats.alreadyWritten++;
      return;
    } catch (e) {
      const msg = (e as Error).message;
      if (stats.errors.length < 10) stats.errors.push(msg);
      if (Date.now() > deadline)
        throw new Error(`chunk at ${args[1]} not written after ${deadlineMs} ms: ${msg}`, { cause: e });
      stats.retries++;
      await sleep(Math.min(1000, 50 * attempt));
    }
  }
}

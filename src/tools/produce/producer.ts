/**
 * Writes generated events to a stream in chunks, as fast as Redis takes them or at a fixed rate.
 *
 * Two ways to send a chunk, same result (one XADD per event, IDs chosen by Redis, in order):
 * - `script` (default): one EVALSHA of `XADD_MANY_1` (redis/scripts/xaddMany-1.ts) carrying the whole
 *   chunk.
 * - `pipeline`: one `redis.pipeline()` of XADDs.
 *
 * Why `script` is the default: the client, not Redis, is the bottleneck. ioredis spends ~15 µs of CPU
 * per command object (build, promise, RESP encoding), so pipelined XADD of msgpack bodies tops out near
 * 60–65k events/s on a 2-core box; one script call per 1000 events reaches ~120–150k (measured with
 * 200k events, msgpack). Use `pipeline` where scripting is not allowed.
 */
import type { Redis } from 'ioredis';
import { xaddManyScript } from '../../redis/scripts/xaddMany-1.js';
import { type EventKind, type GeneratorOptions, generateEvents, kindCounts } from './generator.js';
import { partitionOf, partitionStream } from '../../partition/partitionOf.js';
import { sleep } from '../../util/backoff.js';

export interface ProduceOptions extends GeneratorOptions {
  /** Target events per second; 0 = as fast as possible. @defaultValue 0 */
  rate?: number;
  /** Cap the stream at about this many entries (`XADD MAXLEN ~ n`); unset = no cap. */
  maxLen?: number;
  /** How each chunk is sent (see the module comment). @defaultValue `script` */
  method?: 'script' | 'pipeline';
  /**
   * Write each event to its key's partition stream (partition/partitionOf.ts), as a pipeline with
   * `source.partitions` = `count` reads them; `stream` is then the pipeline's `source.stream`.
   */
  partitions?: { count: number; keyGroups: number; template: string };
}

export interface ProduceResult {
  produced: number;
  /** Wall time from the first write to the last reply. */
  seconds: number;
  byKind: Record<EventKind, number>;
}

/** Events per chunk when unlimited: amortises round trips, still reports progress often. */
const CHUNK = 1000;
/** Chunks on the wire at once, so Redis works while we encode the next one. */
const IN_FLIGHT = 2;
/** Rated mode sends about this many chunks per second, so the rate is smooth, not bursty. */
const RATED_CHUNKS_PER_SECOND = 20;

type Fields = Array<string | Buffer>;
type SendChunk = (chunk: Fields[]) => Promise<void>;

function pipelineSender(redis: Redis, stream: string, maxLen: number | undefined): SendChunk {
  const trim: string[] = maxLen === undefined ? [] : ['MAXLEN', '~', String(maxLen)];
  return async (chunk) => {
    const pipeline = redis.pipeline();
    for (const fields of chunk) pipeline.xadd(stream, ...trim, '*', ...fields);
    const replies = await pipeline.exec();
    if (!replies) throw new Error(`XADD ${stream}: pipeline was discarded`);
    for (const [err] of replies) if (err) throw new Error(`XADD ${stream}: ${err.message}`);
  };
}

function scriptSender(redis: Redis, stream: string, maxLen: number | undefined): SendChunk {
  const head = maxLen === undefined ? '' : String(maxLen);
  // Loaded before the first chunk: with two chunks in flight, falling back to EVAL on a first-use NOSCRIPT
  // let the second chunk (found cached after another client loaded the script) land before the first —
  // seen as out-of-order input in tests that share a server.
  let loaded: Promise<void> | null = null;
  return async (chunk) => {
    const args: Fields = [head];
    for (const fields of chunk) args.push(String(fields.length), ...fields);
    loaded ??= xaddManyScript.load(redis);
    await loaded;
    try {
      // NOSCRIPT now means the cache was flushed mid-run (SCRIPT FLUSH, failover); nothing ran, and the
      // loader sends the chunk again as EVAL.
      await xaddManyScript.run(redis, [stream], args);
    } catch (err) {
      throw new Error(`XADD ${stream}: ${(err as Error).message}`, { cause: err });
    }
  };
}

/**
 * Splits each chunk by the partition of its entries' keys (a keyless entry goes with the empty key) and
 * sends each part to its partition's stream; a partition's entries keep their order.
 */
function partitionedSender(
  parts: NonNullable<ProduceOptions['partitions']>,
  keyField: string,
  senderOf: (stream: string) => SendChunk,
  stream: string,
): SendChunk {
  const senders = Array.from({ length: parts.count }, (_, p) =>
    senderOf(partitionStream(parts.template, stream, p, parts.count)),
  );
  return async (chunk) => {
    const byPartition: Fields[][] = senders.map(() => []);
    for (const fields of chunk) {
      const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === keyField);
      const key = at < 0 ? '' : (fields[at + 1] as string | Buffer);
      const p = partitionOf(
        typeof key === 'string' ? key : new Uint8Array(key),
        parts.keyGroups,
        parts.count,
      );
      (byPartition[p] as Fields[]).push(fields);
    }
    await Promise.all(byPartition.map((c, p) => (c.length > 0 ? (senders[p] as SendChunk)(c) : null)));
  };
}

/**
 * Generates `opts.count` events (see {@link generateEvents}) and appends them to `stream`.
 *
 * Chunks of up to 1000 events, at most two in flight. Rated: chunks of rate/20 events (1..1000), each sent
 * when the schedule (start + sent / rate) says so; when Redis is slower than the rate, chunks go out
 * back to back until the schedule is met again (never faster than unlimited mode).
 *
 * @param onProgress called after each chunk is acknowledged, with entries done so far and `opts.count`
 * @throws RangeError on bad options; Error naming the stream when Redis rejects a write
 */
export async function produce(
  redis: Redis,
  stream: string,
  opts: ProduceOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<ProduceResult> {
  const rate = opts.rate ?? 0;
  if (!(rate >= 0 && Number.isFinite(rate))) throw new RangeError(`rate must be ≥ 0, got ${rate}`);
  if (opts.maxLen !== undefined && !(Number.isInteger(opts.maxLen) && opts.maxLen >= 1)) {
    throw new RangeError(`maxLen must be an integer ≥ 1, got ${opts.maxLen}`);
  }
  const events = generateEvents(opts); // validates the generator options before anything is sent
  const sender = opts.method === 'pipeline' ? pipelineSender : scriptSender;
  const send =
    opts.partitions !== undefined && opts.partitions.count > 1
      ? partitionedSender(
          opts.partitions,
          opts.keyField ?? 'key',
          (s) => sender(redis, s, opts.maxLen),
          stream,
        )
      : sender(redis, stream, opts.maxLen);
  const chunkSize =
    rate > 0 ? Math.max(1, Math.min(CHUNK, Math.ceil(rate / RATED_CHUNKS_PER_SECOND))) : CHUNK;
  const byKind = kindCounts();
  const total = opts.count;

  const inFlight: Array<Promise<number>> = [];
  let sent = 0;
  let done = 0;
  const start = performance.now();

  const settleOldest = async (): Promise<void> => {
    done += await (inFlight.shift() as Promise<number>);
    onProgress?.(done, total);
  };

  while (sent < total) {
    if (rate > 0) {
      const wait = start + (sent / rate) * 1000 - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const chunk: Fields[] = [];
    while (chunk.length < chunkSize) {
      const next = events.next();
      if (next.done) break;
      byKind[next.value.kind]++;
      chunk.push(next.value.fields);
    }
    if (chunk.length === 0) break;
    sent += chunk.length;
    const n = chunk.length;
    const reply = send(chunk).then(() => n);
    reply.catch(() => {}); // settleOldest observes it; this keeps a second failure from going unhandled
    inFlight.push(reply);
    if (inFlight.length >= IN_FLIGHT) await settleOldest();
  }
  while (inFlight.length > 0) await settleOldest();

  return { produced: done, seconds: (performance.now() - start) / 1000, byKind };
}

/**
 * Inputs the generator in src/tools/produce cannot make:
 * - `produceUniqueKeys`: every event its own key (`u0…u<n-1>`), for the open-windows memory scenario;
 * - `LiveProducer`: a fixed offered load whose entry IDs are set by the producer to its clock when it
 *   writes them (`<Date.now()>-<seq>`), with the same ms as the body's `ts`, and remembered — so the bench
 *   knows every entry's write time without reading the stream back.
 * Bodies are msgpack `{ id, ts, seq, amount: 1..1000, type }` under the key field `key` and body field `data`,
 * like the generator's.
 */
import { createHash } from 'node:crypto';
import { Encoder } from '@msgpack/msgpack';
import type { Redis } from 'ioredis';
import { XADD_MANY_1 } from '../../src/redis/scripts/xaddMany-1.js';
import { mulberry32 } from '../../src/tools/produce/generator.js';

type Fields = Array<string | Buffer>;

/** KEYS[1] = stream; ARGV = per entry: ID, field count c, c field names and values. */
const XADD_IDS_1 = `local key = KEYS[1]
local i, n = 1, #ARGV
while i <= n do
  local c = tonumber(ARGV[i + 1])
  redis.call('XADD', key, ARGV[i], unpack(ARGV, i + 2, i + 1 + c))
  i = i + 2 + c
end
return 1`;

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const encoder = new Encoder();

function body(o: { id: string; ts: number; seq: number; amount: number; type: string }): Buffer {
  const u8 = encoder.encode(o);
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/**
 * Writes `count` events, event `i` under key `u<i>` at event time `startTs + floor(i·intervalMs)`, in
 * chunks of 1000 (one script call each, two in flight).
 */
export async function produceUniqueKeys(
  redis: Redis,
  stream: string,
  count: number,
  startTs: number,
  intervalMs: number,
  onProgress?: (done: number) => void,
): Promise<void> {
  await redis.script('LOAD', XADD_MANY_1);
  const sha = sha1(XADD_MANY_1);
  const rand = mulberry32(7);
  const inFlight: Array<Promise<unknown>> = [];
  let done = 0;
  for (let i = 0; i < count;) {
    const args: Fields = [''];
    const end = Math.min(count, i + 1000);
    for (; i < end; i++) {
      const amount = 1 + Math.floor(rand() * 1000);
      const ts = Math.floor(startTs + i * intervalMs);
      args.push('4', 'key', `u${i}`, 'data', body({ id: `u${i}`, ts, seq: 1, amount, type: 'order' }));
    }
    const n = end - done;
    inFlight.push(redis.evalsha(sha, 1, stream, ...args).then(() => n));
    if (inFlight.length >= 2) {
      done += (await inFlight.shift()) as number;
      onProgress?.(done);
    }
  }
  for (const p of inFlight) done += (await p) as number;
  onProgress?.(done);
}

export interface LiveResult {
  sent: number;
  /** Date.now() of the first and last write. */
  firstMs: number;
  lastMs: number;
  /** ID of entry i: `${idMs[i]}-${idSeq[i]}`. */
  idMs: Float64Array;
  idSeq: Uint32Array;
}

/** Writes `rate` events per second for `seconds` into an empty stream, with explicit, clock-based IDs. */
export class LiveProducer {
  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly keys: number,
  ) {}

  async run(rate: number, seconds: number, onProgress?: (sent: number) => void): Promise<LiveResult> {
    await this.redis.script('LOAD', XADD_IDS_1);
    const sha = sha1(XADD_IDS_1);
    const capacity = Math.ceil(rate * seconds) + 10_000;
    const idMs = new Float64Array(capacity);
    const idSeq = new Uint32Array(capacity);
    const rand = mulberry32(5);
    const inFlight: Array<Promise<unknown>> = [];
    let sent = 0;
    let lastMs = 0;
    let seq = 0;
    const t0 = performance.now();
    const firstMs = Date.now();
    for (;;) {
      const elapsed = (performance.now() - t0) / 1000;
      if (elapsed >= seconds) break;
      // Chunks every ~5 ms: smooth enough that the load is steady, large enough to be cheap to send.
      const due = Math.min(capacity - sent, Math.floor(rate * elapsed) - sent, 4000);
      if (due <= 0) {
        await sleep(5);
        continue;
      }
      const now = Date.now();
      if (now > lastMs) {
        lastMs = now;
        seq = 0;
      }
      const args: Fields = [];
      for (let k = 0; k < due; k++, seq++) {
        const i = sent + k;
        idMs[i] = lastMs;
        idSeq[i] = seq;
        const key = `k${Math.floor(rand() * this.keys)}`;
        const amount = 1 + Math.floor(rand() * 1000);
        const b = body({ id: `L${i}`, ts: lastMs, seq: i, amount, type: 'order' });
        args.push(`${lastMs}-${seq}`, '4', 'key', key, 'data', b);
      }
      sent += due;
      inFlight.push(this.redis.evalsha(sha, 1, this.stream, ...args));
      if (inFlight.length >= 2) await inFlight.shift();
      onProgress?.(sent);
      await sleep(0);
    }
    await Promise.all(inFlight);
    return { sent, firstMs, lastMs: Date.now(), idMs, idSeq };
  }
}

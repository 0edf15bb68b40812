/**
 * Contender c, a well-written single-threaded consumer: what a competent engineer writes by hand for the
 * same job as the streamshard bench pipeline, on one thread, without the guarantees.
 *
 * Per read of up to 1000 entries (Buffer replies):
 *   - per entry: find `key` and `data`, msgpack-decode the body with one reused Decoder, check that the key
 *     is non-empty and `ts` and `amount` are finite numbers (bad entries are counted and acked, not written
 *     anywhere), and add `amount` to the entry's tumbling window [floor(ts/size)·size, +size) for its key:
 *     count, sum, min, max; an event whose window already closed is counted as late and dropped;
 *   - stream time = the largest `ts` seen; windows with end + grace ≤ stream time close;
 *   - ONE round trip: the closed windows' results as `XADD OUT_STREAM * key … window_start … window_end …
 *     count … sum_amount … min_amount … max_amount …` (the same entries as streamshard's sink, written by
 *     the producer's XADD_MANY_1 script, ≤1000 results per call) and one `XACK` of every entry read, pipelined.
 * Not done (streamshard does them): dedup, dead-letter entries, checkpointing the open windows (a crash
 * loses them, yet their entries are acked), atomicity between results and acks, parallelism.
 */
import { createHash } from 'node:crypto';
import { Decoder } from '@msgpack/msgpack';
import { XADD_MANY_1 } from '../../src/redis/scripts/xaddMany-1.js';
import { AckLatency, connect, entriesOf, finish, readArgs, ready, settings, stopping } from './common.js';

const redis = connect();
const latency = new AckLatency();
const { stream, group, windowMs: size, graceMs: grace, out } = settings;
const XADD_MANY_SHA = createHash('sha1').update(XADD_MANY_1).digest('hex');
await redis.script('LOAD', XADD_MANY_1);

type Body = { ts?: unknown; amount?: unknown };
const decoder = new Decoder();
const KEY = Buffer.from('key');
const DATA = Buffer.from('data');
/** Open windows by start, ascending; per key: [count, sum, min, max]. */
const starts: number[] = [];
const windows = new Map<number, Map<string, Float64Array>>();
let streamTime = Number.NEGATIVE_INFINITY;
let processed = 0;
let bad = 0;
let late = 0;
let resultsWritten = 0;

function add(key: string, ts: number, amount: number): void {
  const start = Math.floor(ts / size) * size;
  if (start + size + grace <= streamTime) {
    late++;
    return;
  }
  let w = windows.get(start);
  if (w === undefined) {
    w = new Map();
    windows.set(start, w);
    let i = starts.length;
    while (i > 0 && (starts[i - 1] as number) > start) i--;
    starts.splice(i, 0, start);
  }
  const a = w.get(key);
  if (a === undefined) w.set(key, Float64Array.of(1, amount, amount, amount));
  else {
    a[0] = (a[0] as number) + 1;
    a[1] = (a[1] as number) + amount;
    if (amount < (a[2] as number)) a[2] = amount;
    if (amount > (a[3] as number)) a[3] = amount;
  }
}

/** Closes due windows into XADD_MANY argument lists of ≤1000 results each. */
function closeDue(): Array<Array<string>> {
  const calls: string[][] = [];
  let args: string[] = [''];
  let n = 0;
  while (starts.length > 0 && (starts[0] as number) + size + grace <= streamTime) {
    const start = starts.shift() as number;
    const w = windows.get(start) as Map<string, Float64Array>;
    windows.delete(start);
    const s = String(start);
    const e = String(start + size);
    for (const [key, a] of w) {
      args.push('14', 'key', key, 'window_start', s, 'window_end', e, 'count', String(a[0]));
      args.push('sum_amount', String(a[1]), 'min_amount', String(a[2]), 'max_amount', String(a[3]));
      if (++n === 1000) {
        calls.push(args);
        args = [''];
        n = 0;
      }
    }
  }
  if (n > 0) calls.push(args);
  return calls;
}

function fieldOf(fields: Buffer[], name: Buffer): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if ((fields[i] as Buffer).equals(name)) return fields[i + 1];
  return undefined;
}

ready();
const t0 = Date.now();
while (!stopping()) {
  const entries = entriesOf(await redis.callBuffer('XREADGROUP', ...readArgs(1000)));
  if (entries.length === 0) {
    if (settings.live) continue;
    break;
  }
  const ids: Buffer[] = [];
  for (const [id, fields] of entries) {
    ids.push(id);
    const key = fieldOf(fields, KEY);
    const data = fieldOf(fields, DATA);
    let body: Body | null = null;
    try {
      if (data !== undefined) body = decoder.decode(data) as Body | null;
    } catch {
      body = null;
    }
    const ts = body?.ts;
    const amount = body?.amount;
    if (key === undefined || key.length === 0 || typeof ts !== 'number' || !Number.isFinite(ts)) bad++;
    else if (typeof amount !== 'number' || !Number.isFinite(amount)) bad++;
    else {
      if (ts > streamTime) streamTime = ts;
      add(key.toString(), ts, amount);
    }
  }
  const pipeline = redis.pipeline();
  for (const args of closeDue()) {
    pipeline.evalsha(XADD_MANY_SHA, 1, out, ...args);
    resultsWritten += (args.length - 1) / 15;
  }
  pipeline.xack(stream, group, ...ids);
  const replies = await pipeline.exec();
  for (const [err] of replies ?? []) if (err) throw err;
  latency.recordAcked(ids, Date.now());
  processed += entries.length;
}
await finish(redis, t0, processed, latency, { bad, late, resultsWritten, openWindows: windows.size });

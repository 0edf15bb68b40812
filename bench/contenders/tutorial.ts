/**
 * Contender b, the tutorial consumer — the loop most Redis Streams guides show: `XREADGROUP COUNT 10`,
 * then for each message decode its body and `XACK` that one message, awaiting each reply. The decoded
 * amount is summed so the decode is not dead code. In drain mode it stops after `LIMIT` entries (the bench
 * gives it a prefix of the stream: it is slow).
 */
import { decode } from '@msgpack/msgpack';
import { AckLatency, connect, entriesOf, finish, readArgs, ready, settings, stopping } from './common.js';

const redis = connect();
const latency = new AckLatency();
const { stream, group, limit } = settings;
ready();
const t0 = Date.now();
let processed = 0;
let total = 0;
let bad = 0;
outer: while (!stopping()) {
  const entries = entriesOf(await redis.callBuffer('XREADGROUP', ...readArgs(10)));
  if (entries.length === 0) {
    if (settings.live) continue;
    break;
  }
  for (const [id, fields] of entries) {
    const i = fields.findIndex((f, k) => k % 2 === 0 && f.toString() === 'data');
    try {
      const body = decode(fields[i + 1] as Buffer) as { amount?: unknown };
      if (typeof body.amount === 'number') total += body.amount;
      else bad++;
    } catch {
      bad++;
    }
    await redis.xack(stream, group, id);
    latency.recordAcked([id], Date.now());
    processed++;
    if (limit > 0 && processed >= limit && !settings.live) break outer;
  }
}
await finish(redis, t0, processed, latency, { bad, total });

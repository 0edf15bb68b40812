/**
 * Contender a, the raw drain: `XREADGROUP COUNT 1000`, then one `XACK` of the entries read, then the next
 * read. No processing: the ceiling for one reader connection in Node (ioredis, Buffer replies).
 */
import { AckLatency, connect, entriesOf, finish, readArgs, ready, settings, stopping } from './common.js';

const redis = connect();
const latency = new AckLatency();
const { stream, group, limit } = settings;
ready();
const t0 = Date.now();
let processed = 0;
while (!stopping()) {
  const entries = entriesOf(await redis.callBuffer('XREADGROUP', ...readArgs(1000)));
  if (entries.length === 0) {
    if (settings.live) continue;
    break;
  }
  const ids = entries.map((e) => e[0]);
  await redis.callBuffer('XACK', stream, group, ...ids);
  latency.recordAcked(ids, Date.now());
  processed += entries.length;
  if (limit > 0 && processed >= limit && !settings.live) break;
}
await finish(redis, t0, processed, latency);

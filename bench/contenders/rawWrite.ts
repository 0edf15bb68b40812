/**
 * Contender raw+write, the floor of a windowed job's Redis work: `XREADGROUP COUNT 1000`, then one
 * `MULTI` with as many result `XADD`s as streamshard writes for the same input and pipeline, and one
 * `XACK` of the entries read, `EXEC`; then the next read. No decode, no dedup, no window, no state: what
 * any implementation of the job must ask Redis for at least (streamshard adds its checkpoint writes and
 * the fencing). The bench passes the results per input entry it expects (`RESULTS_PER_EVENT`, exact for
 * the generated input); the script spreads them over the batches so the total matches (± 1).
 *
 * A result entry has the fields and the shape of streamshard's (key, window_start, window_end, count,
 * sum_amount, min_amount, max_amount as decimal strings): the key is the input entry's, the numbers are
 * plausible constants — their value costs Redis nothing more.
 *
 * Reads go through ioredis exactly as the raw drain's do; the transaction goes out on a second connection,
 * streamshard's lean RESP connection (src/redis/respConnection.ts), with its replies left unparsed except
 * for a check that nothing failed: through ioredis' `multi()` the client's own work (a command object and
 * a `QUEUED` reply per XADD) capped this contender far below the raw drain, which would make a floor of
 * the Node client rather than of Redis.
 */
import { RespConnection } from '../../src/redis/respConnection.js';
import { AckLatency, connect, entriesOf, finish, readArgs, ready, settings, stopping } from './common.js';

const redis = connect();
const writer = new RespConnection({ url: settings.url, name: 'bench:raw+write', connectTimeoutMs: 10_000 });
await writer.connect();
const latency = new AckLatency();
const { stream, group, limit, out } = settings;
const perEvent = Number(process.env.RESULTS_PER_EVENT ?? '0');
if (!(perEvent >= 0) || out === '') throw new Error('RESULTS_PER_EVENT (≥ 0) and OUT_STREAM must be set');

ready();
const t0 = Date.now();
let processed = 0;
let written = 0;
/** Results owed but not yet written (a fraction of one carried to the next batch). */
let owed = 0;
while (!stopping()) {
  const entries = entriesOf(await redis.callBuffer('XREADGROUP', ...readArgs(1000)));
  if (entries.length === 0) {
    if (settings.live) continue;
    break;
  }
  owed += entries.length * perEvent;
  const k = Math.min(entries.length, Math.floor(owed + 1e-9));
  owed -= k;
  const tx: Array<Array<string | Buffer>> = [['MULTI']];
  for (let i = 0; i < k; i++) {
    const [, fields] = entries[i] as [Buffer, Buffer[]];
    tx.push([
      'XADD',
      out,
      '*',
      'key',
      fields[1] as Buffer,
      'window_start',
      '1700000010000',
      'window_end',
      '1700000020000',
      'count',
      '61',
      'sum_amount',
      '30712',
      'min_amount',
      '3',
      'max_amount',
      '998',
    ]);
  }
  const ids = entries.map((e) => e[0]);
  tx.push(['XACK', stream, group, ...ids], ['EXEC']);
  const replies = await writer.sendRaw(tx);
  const exec = replies.at(-1) as Buffer;
  // EXEC answers an array (`*<n>`); an error reply inside it starts a line with `-`.
  if (exec[0] !== 0x2a || exec[1] === 0x2d || exec.includes('\r\n-'))
    throw new Error(`EXEC: ${exec.toString()}`);
  latency.recordAcked(ids, Date.now());
  written += k;
  processed += entries.length;
  if (limit > 0 && processed >= limit && !settings.live) break;
}
writer.disconnect();
await finish(redis, t0, processed, latency, { written });

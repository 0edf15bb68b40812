/**
 * How long the reader's connection takes to receive one stream entry holding a big value (issue 10,
 * item 2): a private redis-server holds one entry `key k data <N MB>`, and `sendRaw(XRANGE)` fetches it
 * as Redis sends it (in socket-sized chunks). Measured for the connection's reply assembly alone (no
 * limit) and with a `maxRawBulkBytes` limit (the value dropped as it arrives).
 *
 *   node dist/bench/bigReply.js [sizes in MB, default 50 75] [--module <path to a respConnection.js>]
 *
 * `--module` runs another build of the connection (e.g. the one before the linear assembly) for a
 * before/after comparison; a build without `maxRawBulkBytes` ignores the limit.
 */
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { RespConnection as Connection, RespOptions } from '../src/redis/respConnection.js';
import { startLocalRedis } from '../src/tools/localRedis.js';

const args = process.argv.slice(2);
const at = args.indexOf('--module');
const modulePath = at >= 0 ? args.splice(at, 2)[1] : undefined;
const sizes = args.length > 0 ? args.map(Number) : [50, 75];
const REPEAT = 3;

const mod = (await import(
  modulePath === undefined ? '../src/redis/respConnection.js' : pathToFileURL(modulePath).href
)) as { RespConnection: new (o: RespOptions) => Connection };

const server = await startLocalRedis();
const client = new Redis(server.url);
await client.config('SET', 'proto-max-bulk-len', String(1024 * 1024 * 1024));
try {
  for (const mb of sizes) {
    const key = `bigReply:${mb}`;
    await client.del(key);
    await client.xadd(key, '*', 'key', 'k', 'data', Buffer.alloc(mb * 1024 * 1024, 0x61));
    const floor: number[] = [];
    for (let i = 0; i < REPEAT; i++) floor.push(await rawRead(server.port, key));
    floor.sort((x, y) => x - y);
    console.log(`${mb} MB value, bytes off the socket only: median ${(floor[1] as number).toFixed(0)} ms`);
    for (const limit of [undefined, 1024 * 1024]) {
      const c = new mod.RespConnection({
        url: server.url,
        name: 'bench',
        connectTimeoutMs: 5000,
        commandTimeoutMs: 600_000,
        maxRawBulkBytes: limit,
      });
      await c.connect();
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < REPEAT; i++) {
        const t0 = performance.now();
        const [reply] = await c.sendRaw([['XRANGE', key, '-', '+']]);
        times.push(performance.now() - t0);
        bytes = (reply as Buffer).length;
      }
      c.disconnect();
      times.sort((x, y) => x - y);
      const label = limit === undefined ? 'no limit' : 'maxRawBulkBytes 1 MiB';
      console.log(
        `${mb} MB value, ${label}: median ${(times[1] as number).toFixed(0)} ms (min ${(times[0] as number).toFixed(0)}, max ${(times[2] as number).toFixed(0)}), reply held ${bytes} bytes`,
      );
    }
    await client.del(key);
  }
} finally {
  client.disconnect();
  await server.stop();
}

/** The floor: the same XRANGE on a plain socket, its reply's bytes counted and thrown away. */
async function rawRead(port: number, key: string): Promise<number> {
  const expected = await replyLength(key);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = 0;
    const t0 = performance.now();
    s.on('connect', () =>
      s.write(`*4\r\n$6\r\nXRANGE\r\n$${key.length}\r\n${key}\r\n$1\r\n-\r\n$1\r\n+\r\n`),
    );
    s.on('data', (d) => {
      got += d.length;
      if (got >= expected) {
        s.destroy();
        resolve(performance.now() - t0);
      }
    });
    s.on('error', reject);
  });
}

/** Bytes of the XRANGE reply (measured once with the connection under test, without a limit). */
async function replyLength(key: string): Promise<number> {
  const c = new mod.RespConnection({ url: server.url, name: 'bench', connectTimeoutMs: 5000 });
  await c.connect();
  const [r] = await c.sendRaw([['XRANGE', key, '-', '+']]);
  c.disconnect();
  return (r as Buffer).length;
}

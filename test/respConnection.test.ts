/**
 * The reader's RESP connection: reply parsing when replies arrive in pieces, failures of commands in
 * flight, reconnecting, and agreement with ioredis on real Redis replies.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { encode, parseReply, ReplyError, RespConnection, RespReader } from '../src/redis/respConnection.js';
import { startLocalRedis } from '../src/tools/localRedis.js';
import { redis, useTestHooks } from './helpers/pipeline.js';
import { redisUrl, uniqueName, waitFor } from './helpers/redis.js';

/** A loopback server speaking just enough RESP: +OK to the handshake, scripted bytes to the test commands. */
async function fakeServer(onCommand: (text: string, socket: net.Socket) => void) {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('data', (d) => {
      const text = d.toString('latin1');
      if (text.includes('SETNAME')) s.write('+OK\r\n');
      else onCommand(text, s);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

async function trickle(s: net.Socket, bytes: Buffer): Promise<void> {
  for (let i = 0; i < bytes.length; i++) {
    s.write(bytes.subarray(i, i + 1));
    if (i % 7 === 0) await new Promise((r) => setImmediate(r));
  }
}

useTestHooks();

const servers: Array<{ close: () => Promise<void> }> = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

describe('RespConnection', () => {
  it('parses every reply type, delivered one byte at a time', async () => {
    const replies = [
      Buffer.from(
        '+OK\r\n$-1\r\n:42\r\n:-7\r\n-ERR bad thing\r\n*3\r\n*2\r\n$3\r\nabc\r\n*-1\r\n$0\r\n\r\n*0\r\n',
        'latin1',
      ),
      Buffer.from('$4\r\na\r\nb\r\n', 'latin1'),
    ];
    let n = 0;
    const srv = await fakeServer((text, s) => {
      if (text.includes('TEST')) void trickle(s, replies[n++ % 2] as Buffer);
    });
    servers.push(srv);
    const c = new RespConnection({ url: srv.url, name: 't', connectTimeoutMs: 2000 });
    await c.connect();
    const got = await c.send([['TEST'], ['TEST'], ['TEST'], ['TEST'], ['TEST'], ['TEST']]);
    expect(got.slice(0, 4)).toEqual(['OK', null, 42, -7]);
    expect(got[4]).toBeInstanceOf(ReplyError);
    expect((got[4] as ReplyError).message).toBe('ERR bad thing');
    expect(got[5]).toEqual([[Buffer.from('abc'), null], Buffer.alloc(0), []]);
    // the next reply (a bulk string holding CRLF) is parsed by length, not by line
    expect(await c.call('TEST')).toEqual(Buffer.from('a\r\nb'));
    // sendRaw hands over each reply's exact bytes, also when they came in pieces
    const raw = await c.sendRaw([['TEST'], ['TEST'], ['TEST'], ['TEST'], ['TEST'], ['TEST']]);
    expect(raw.map((b) => b.toString('latin1'))).toEqual([
      '+OK\r\n',
      '$-1\r\n',
      ':42\r\n',
      ':-7\r\n',
      '-ERR bad thing\r\n',
      '*3\r\n*2\r\n$3\r\nabc\r\n*-1\r\n$0\r\n\r\n*0\r\n',
    ]);
    expect(raw.map(parseReply)).toEqual(got);
    c.disconnect();
  });

  it('RespReader.skip resumes where the bytes ended: replies found whole at any split', () => {
    const replies = [
      '+OK\r\n',
      '*2\r\n*3\r\n$2\r\nid\r\n*-1\r\n:12\r\n$5\r\na\r\nbc\r\n',
      '$-1\r\n',
      '*0\r\n',
      '-ERR x\r\n',
      `*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nk\r\n$300\r\n${'v'.repeat(300)}\r\n*2\r\n$3\r\n1-1\r\n*-1\r\n`,
    ].map((t) => Buffer.from(t, 'latin1'));
    const all = Buffer.concat(replies);
    for (let trial = 0; trial < 200; trial++) {
      // feed `all` in chunks cut at random points, as onData does: keep the unfinished reply's bytes
      const cuts = [
        0,
        ...Array.from({ length: 6 }, () => Math.floor(Math.random() * all.length)),
        all.length,
      ];
      cuts.sort((a, b) => a - b);
      const r = new RespReader(Buffer.alloc(0));
      let start = 0;
      const found: string[] = [];
      for (let c = 1; c < cuts.length; c++) {
        const chunk = all.subarray(cuts[c - 1], cuts[c]);
        r.pos -= start;
        r.buf = Buffer.concat([r.buf.subarray(start), chunk]);
        start = 0;
        while (r.pos < r.buf.length) {
          const whole = r.skip();
          if (whole !== true) break; // incomplete (or bad: then `found` comes out short)
          found.push(r.buf.subarray(start, r.pos).toString('latin1'));
          start = r.pos;
        }
      }
      expect(found).toEqual(replies.map((b) => b.toString('latin1')));
    }
  });

  it('fails the commands in flight when the connection drops, then reconnects', async () => {
    const srv = await fakeServer((text, s) => {
      if (text.includes('DROP')) {
        s.write('*2\r\n$3\r\nab'); // half a reply, then the connection is gone
        setTimeout(() => s.destroy(), 20);
      } else if (text.includes('PING')) s.write('+PONG\r\n');
    });
    servers.push(srv);
    const c = new RespConnection({ url: srv.url, name: 't', connectTimeoutMs: 2000 });
    const events: string[] = [];
    c.on('ready', () => events.push('ready'));
    c.on('close', () => events.push('close'));
    await c.connect();
    await expect(c.call('DROP')).rejects.toThrow('Connection is closed');
    await expect(c.call('PING')).rejects.toThrow('Connection is closed'); // sent nowhere while down
    await waitFor('reconnected', async () => c.status === 'ready');
    expect(await c.call('PING')).toBe('PONG');
    expect(events).toEqual(['ready', 'close', 'ready']);
    c.disconnect();
  });

  it('fails a command that gets no reply within commandTimeoutMs and closes the connection', async () => {
    const srv = await fakeServer(() => {}); // never answers
    servers.push(srv);
    const c = new RespConnection({ url: srv.url, name: 't', connectTimeoutMs: 2000, commandTimeoutMs: 100 });
    await c.connect();
    await expect(c.call('HANG')).rejects.toThrow('timed out');
    await waitFor('closed', async () => c.status === 'down');
    c.disconnect();
  });

  it('rejects connect when the server is unreachable', async () => {
    const c = new RespConnection({ url: 'redis://127.0.0.1:1', name: 't', connectTimeoutMs: 500 });
    await expect(c.connect()).rejects.toThrow();
    c.disconnect();
  });

  it('returns what ioredis returns for stream replies from a real Redis, and names itself', async () => {
    const stream = uniqueName('resp');
    const p = redis.pipeline();
    for (let i = 0; i < 3000; i++)
      p.xadd(stream, '*', 'key', `k${i}`, 'data', Buffer.from([0, 13, 10, i & 255]));
    await p.exec();
    const c = new RespConnection({ url: redisUrl(), name: 'streamshard:test:resp', connectTimeoutMs: 2000 });
    await c.connect();
    const mine = await c.call('XRANGE', stream, '-', '+'); // ~100 KB: arrives in several chunks
    const theirs = await redis.xrangeBuffer(stream, '-', '+');
    expect(mine).toEqual(theirs);
    expect(await redis.client('LIST')).toContain('name=streamshard:test:resp');
    expect(encode([['SET', 'k', Buffer.from('v'), 3]]).toString()).toBe(
      '*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\n3\r\n',
    );
    c.disconnect();
  });

  const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
  it.skipIf(!hasOpenssl)(
    'speaks TLS, AUTH with a user and SELECT (rediss://user:pass@host:port/db)',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'streamshard-tls-'));
      const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
      const made = spawnSync('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ]);
      expect(made.status).toBe(0);
      // startLocalRedis picks both ports (again, if one was taken) and polls the plain one with PING.
      const server = await startLocalRedis({ tls: { certFile: cert, keyFile: key } });
      const tlsPort = server.tlsPort;
      expect(tlsPort).toBeTypeOf('number');
      const admin = new Redis(server.url, { protocol: 2 });
      try {
        await admin.call('ACL', 'SETUSER', 'reader', 'on', '>s3cret', '~*', '&*', '+@all');
        const ca = readFileSync(cert);
        const c = new RespConnection({
          url: `rediss://reader:s3cret@localhost:${tlsPort}/3`,
          name: 'streamshard:test:tls',
          connectTimeoutMs: 2000,
          tls: { ca },
        });
        await c.connect();
        await c.call('SET', 'where', 'db3');
        expect(String(await c.call('CLIENT', 'GETNAME'))).toBe('streamshard:test:tls');
        await admin.select(3);
        expect(await admin.get('where')).toBe('db3');
        c.disconnect();
        const wrong = new RespConnection({
          url: `rediss://reader:nope@localhost:${tlsPort}`,
          name: 't',
          connectTimeoutMs: 2000,
          tls: { ca },
        });
        await expect(wrong.connect()).rejects.toThrow('WRONGPASS');
        wrong.disconnect();
      } finally {
        admin.disconnect();
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

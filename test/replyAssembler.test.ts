/**
 * Chunks → whole replies at a cost linear in the reply size (bytes copied counted, no timing), and long
 * bulk strings of stream reads dropped as they arrive instead of buffered.
 */
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ReplyAssembler } from '../src/redis/replyAssembler.js';
import { parseReply, RespConnection, type RespReader } from '../src/redis/respConnection.js';
import { StreamReply } from '../src/source/streamReply.js';

const b = (s: string) => Buffer.from(s, 'latin1');

/** Feeds `bytes` in chunks of `size` (or at the given cuts); returns the replies handed out. */
function feed(a: ReplyAssembler, bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  const onReply = (r: RespReader | null, start: number) => {
    if (r === null) throw new Error('bad');
    out.push(Buffer.from(r.buf.subarray(start, r.pos)));
    return true;
  };
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    if (to > from) a.push(bytes.subarray(from, to), onReply);
    from = Math.max(from, to);
  }
  return out;
}

const every = (n: number, size: number) => Array.from({ length: Math.ceil(n / size) }, (_, i) => i * size);

/** An XREADGROUP reply of one entry `key k data <value>`. */
function readReply(value: Buffer): Buffer {
  return Buffer.concat([
    b('*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$3\r\nkey\r\n$1\r\nk\r\n$4\r\ndata\r\n'),
    b(`$${value.length}\r\n`),
    value,
    b('\r\n'),
  ]);
}

describe('ReplyAssembler', () => {
  const replies = [
    '+OK\r\n',
    '*2\r\n*3\r\n$2\r\nid\r\n*-1\r\n:12\r\n$5\r\na\r\nbc\r\n',
    '$-1\r\n',
    '*0\r\n',
    '-ERR x\r\n',
    `*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nk\r\n$300\r\n${'v'.repeat(300)}\r\n*2\r\n$3\r\n1-1\r\n*-1\r\n`,
  ].map(b);
  const all = Buffer.concat(replies);

  it('hands out every reply whole, exactly, wherever the chunks are cut', () => {
    for (let trial = 0; trial < 300; trial++) {
      const cuts = Array.from({ length: 1 + (trial % 12) }, () => Math.floor(Math.random() * all.length));
      cuts.sort((x, y) => x - y);
      // the 300-byte value is not dropped: the limit applies to longer strings only
      const a = new ReplyAssembler();
      a.limit = 300;
      expect(feed(a, Buffer.concat([all, all]), cuts)).toEqual([...replies, ...replies]);
    }
  });

  it('drops or keeps a long value at any cut, and every reply after it comes out right', () => {
    const long = readReply(Buffer.alloc(2000, 0x64));
    const marked = b(long.toString('latin1').replace(/\$2000\r\nd+\r\n/, '$-2000\r\n'));
    expect(marked.length).toBe(long.length - 2000 - 2 + 1); // the value and its CRLF gone, one '-' more
    const bytes = Buffer.concat([all, long, all, long, long]);
    for (let trial = 0; trial < 500; trial++) {
      const cuts = Array.from({ length: 1 + (trial % 20) }, () => Math.floor(Math.random() * bytes.length));
      cuts.sort((x, y) => x - y);
      const a = new ReplyAssembler();
      a.limit = 1000;
      const got = feed(a, bytes, cuts);
      const want = [...replies, long, ...replies, long, long];
      expect(got.length).toBe(want.length);
      got.forEach((g, i) => {
        const w = want[i] as Buffer;
        if (w === long && !g.equals(long)) expect(g.toString('latin1')).toBe(marked.toString('latin1'));
        else expect(g.toString('latin1')).toBe(w.toString('latin1'));
      });
    }
  });

  it('copies each byte of a big reply a bounded number of times, whatever the chunk size', () => {
    const value = Buffer.alloc(20 * 1024 * 1024, 0x61);
    const reply = readReply(value);
    for (const chunk of [1000, 16 * 1024, 64 * 1024]) {
      const a = new ReplyAssembler();
      const got = feed(a, Buffer.concat([reply, b('+OK\r\n')]), every(reply.length, chunk));
      expect(got.length).toBe(2);
      expect((got[0] as Buffer).equals(reply)).toBe(true);
      // once into the reply's buffer, plus the doublings: at most 3× (concatenating per chunk: ~n²/2chunk)
      expect(a.copied).toBeLessThanOrEqual(3 * reply.length);
    }
  });

  it('drops a long value of a stream read as it arrives, leaving $-<length>; keeps one that came whole', () => {
    const value = Buffer.alloc(5_000_000, 0x62);
    const reply = readReply(value);
    const marked = readReply(Buffer.alloc(0)).toString('latin1').replace('$0\r\n\r\n', '$-5000000\r\n');
    const a = new ReplyAssembler();
    a.limit = 1024 * 1024;
    const got = feed(a, Buffer.concat([reply, b('+OK\r\n'), reply]), [
      ...every(reply.length, 64 * 1024),
      reply.length + 5 + 10, // the second reply, cut after a few bytes ...
      reply.length + 5 + reply.length - 3, // ... and right before its end
    ]);
    expect(got.map((x) => x.toString('latin1'))).toEqual([marked, '+OK\r\n', marked]);
    expect(a.copied).toBeLessThan(1024 * 1024); // nothing of the values was buffered
    const r = new StreamReply(got[0] as Buffer);
    expect([r.count, r.idAt(0)]).toEqual([1, '1-0']);
    expect(parseReply(got[0] as Buffer)).toEqual([
      [b('s'), [[b('1-0'), [b('key'), b('k'), b('data'), null]]]],
    ]);
    // a long value that arrived in the same chunk as the rest of its reply is already in memory: kept
    const whole = new ReplyAssembler();
    whole.limit = 1024 * 1024;
    const kept = feed(whole, reply, []);
    expect(kept.length === 1 && (kept[0] as Buffer).equals(reply)).toBe(true); // (toEqual: slow on 5 MB)
  });
});

describe('RespConnection with a big reply in many chunks', () => {
  const servers: net.Server[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });

  /** Answers the handshake, then `reply` in 4 KB writes to each command. */
  async function server(reply: Buffer): Promise<string> {
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      s.on('data', (d) => {
        if (d.toString('latin1').includes('SETNAME')) {
          s.write('+OK\r\n');
          return;
        }
        for (let i = 0; i < reply.length; i += 4096) s.write(reply.subarray(i, i + 4096));
      });
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return `redis://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  }

  it('hands over a 30 MB stream read whole, or without its long value, at linear cost', async () => {
    const value = Buffer.alloc(30 * 1024 * 1024, 0x63);
    const reply = readReply(value);
    const url = await server(reply);
    const plain = new RespConnection({ url, name: 't', connectTimeoutMs: 2000 });
    await plain.connect();
    const [got] = await plain.sendRaw([['XREADGROUP']]);
    expect((got as Buffer).equals(reply)).toBe(true);
    expect(plain.replies.copied).toBeLessThanOrEqual(3 * reply.length);
    plain.disconnect();

    const limited = new RespConnection({ url, name: 't', connectTimeoutMs: 2000, maxRawBulkBytes: 1 << 20 });
    await limited.connect();
    const [cut] = await limited.sendRaw([['XREADGROUP']]);
    const marked = readReply(Buffer.alloc(0))
      .toString('latin1')
      .replace('$0\r\n\r\n', `$-${value.length}\r\n`);
    expect((cut as Buffer).toString('latin1')).toBe(marked);
    expect(limited.replies.copied).toBeLessThan(1 << 20);
    // the parsed replies of ordinary commands keep their long values
    const [again] = await limited.send([['XRANGE']]);
    const kept = (again as unknown as [[Buffer, [[Buffer, Buffer[]]]]])[0][1][0][1][3] as Buffer;
    expect(kept.equals(value)).toBe(true);
    limited.disconnect();
  });
});

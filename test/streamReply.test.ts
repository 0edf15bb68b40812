/**
 * The read path on the main thread: an XREADGROUP reply stays in its RESP bytes (StreamReply), and the
 * router copies each entry from there into its shard's batch. Checked entry by entry against what the
 * batch reader sees, and against a real Redis reply.
 */
import { describe, expect, it } from 'vitest';
import { ReplyError, RespConnection } from '../src/redis/respConnection.js';
import { BatchReader, NO_KEY } from '../src/routing/batchCodec.js';
import { fnv1a, keyGroupOf } from '../src/routing/hash.js';
import { OpenBatch, Router } from '../src/routing/router.js';
import { StreamReply } from '../src/source/streamReply.js';
import { redis, useTestHooks } from './helpers/pipeline.js';
import { redisUrl, uniqueName } from './helpers/redis.js';

useTestHooks();

interface Entry {
  id: string;
  fields: Buffer[] | null;
}

/** The RESP bytes Redis sends for these entries of one stream. */
function encodeReply(entries: Entry[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*1\r\n*2\r\n$1\r\ns\r\n*${entries.length}\r\n`)];
  const bulk = (b: Buffer) => parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  for (const e of entries) {
    parts.push(Buffer.from('*2\r\n'));
    bulk(Buffer.from(e.id));
    if (e.fields === null) parts.push(Buffer.from('*-1\r\n'));
    else {
      parts.push(Buffer.from(`*${e.fields.length}\r\n`));
      for (const f of e.fields) bulk(f);
    }
  }
  return Buffer.concat(parts);
}

const b = (s: string) => Buffer.from(s);

describe('StreamReply and Router', () => {
  const entries: Entry[] = [
    { id: '1-0', fields: [b('key'), b('k1'), b('data'), b('x')] },
    { id: '1-1', fields: [b('data'), b('key'), b('other'), b('y')] }, // "key" only as a value: no key
    { id: '1-2', fields: null }, // deleted since it was read
    { id: '1-3', fields: [b('key'), b('ключ'), b('data'), Buffer.alloc(300, 7)] }, // UTF-8 key, long value
    {
      id: '1-4',
      fields: Array.from({ length: 40 }, (_, i) => b(i === 20 ? 'key' : i === 21 ? 'k9' : `f${i}`)),
    },
    { id: '1-5', fields: [b('key'), b(''), b('data'), b('\r\n')] }, // empty key; CRLF inside a value
    { id: '1-6', fields: [] },
  ];

  it('walks the reply: entries with fields, deleted IDs, the last ID', () => {
    const reply = new StreamReply(encodeReply(entries));
    expect(reply.count).toBe(6);
    expect(Array.from({ length: reply.count }, (_, i) => reply.idAt(i))).toEqual([
      '1-0',
      '1-1',
      '1-3',
      '1-4',
      '1-5',
      '1-6',
    ]);
    expect(reply.deleted).toEqual([b('1-2')]);
    expect(reply.lastId).toBe('1-6');
    const none = new StreamReply(b('*-1\r\n'));
    expect([none.count, none.lastId, none.deleted]).toEqual([0, null, []]);
    const empty = new StreamReply(b('*1\r\n*2\r\n$1\r\ns\r\n*0\r\n'));
    expect([empty.count, empty.lastId]).toEqual([0, null]);
  });

  it('rejects error replies and bytes that are not a stream read', () => {
    expect(() => new StreamReply(b('-NOGROUP no such group\r\n'))).toThrow(ReplyError);
    const whole = encodeReply(entries);
    expect(() => new StreamReply(whole.subarray(0, whole.length - 3))).toThrow('malformed XREADGROUP reply');
    expect(() => new StreamReply(b(':1\r\n'))).toThrow('malformed XREADGROUP reply');
  });

  it('routes each entry whole, with its key group, key field and delivery count, to its shard', () => {
    const keyGroups = 64;
    const shards = 3;
    const router = new Router('key', keyGroups, shards);
    const batches = Array.from({ length: shards }, () => new OpenBatch());
    const reply = new StreamReply(encodeReply(entries));
    router.route(reply, batches, 5, [1, 2, 3, 4, 5, 70_000]);
    const seen = new Map<string, { shard: number; r: BatchReader }>();
    const got: Array<{
      id: string;
      fields: Buffer[];
      keyField: number;
      keyGroup: number;
      deliveries: number;
    }> = [];
    batches.forEach((batch, shard) => {
      expect(batch.since).toBe(batch.size > 0 ? 5 : 0);
      const r = new BatchReader(batch.take().buf);
      while (r.next()) {
        seen.set(r.id(), { shard, r });
        got.push({
          id: r.id(),
          fields: r.fields().map((f) => Buffer.from(f)),
          keyField: r.keyField,
          keyGroup: r.keyGroup,
          deliveries: r.deliveries,
        });
        const expectedShard = Math.floor((r.keyGroup * shards) / keyGroups);
        expect(shard).toBe(expectedShard);
      }
    });
    const withFields = entries.filter((e) => e.fields !== null);
    const expected = withFields.map((e, i) => {
      const fields = e.fields as Buffer[];
      let keyField = NO_KEY;
      for (let f = 0; f + 1 < fields.length; f += 2) {
        if ((fields[f] as Buffer).equals(b('key'))) {
          keyField = f + 1;
          break;
        }
      }
      const key = keyField === NO_KEY ? Buffer.alloc(0) : (fields[keyField] as Buffer);
      return {
        id: e.id,
        fields,
        keyField,
        keyGroup: keyGroupOf(fnv1a(key), keyGroups),
        deliveries: [1, 2, 3, 4, 5, 70_000][i] as number,
      };
    });
    const byId = (x: { id: string }, y: { id: string }) => x.id.localeCompare(y.id);
    expect(got.sort(byId)).toEqual(expected.sort(byId));
  });

  it('reads what a real Redis sends (sendRaw of XREADGROUP)', async () => {
    const stream = uniqueName('streamReply');
    await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    for (let i = 0; i < 50; i++)
      await redis.xadd(stream, '*', 'key', `k${i}`, 'data', Buffer.from([0, 13, 10, i]));
    const c = new RespConnection({
      url: redisUrl(),
      name: 'streamshard:test:streamReply',
      connectTimeoutMs: 2000,
    });
    await c.connect();
    const [raw] = await c.sendRaw([['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 100, 'STREAMS', stream, '>']]);
    c.disconnect();
    const reply = new StreamReply(raw as Buffer);
    const ids = (await redis.xrange(stream, '-', '+')).map(([id]) => id);
    expect(Array.from({ length: reply.count }, (_, i) => reply.idAt(i))).toEqual(ids);
    expect(reply.lastId).toBe(ids[ids.length - 1]);
    const batches = [new OpenBatch()];
    new Router('key', 16, 1).route(reply, batches, 0);
    const r = new BatchReader((batches[0] as OpenBatch).take().buf);
    for (let i = 0; r.next(); i++) {
      expect(Buffer.from(r.field(r.keyField)).toString()).toBe(`k${i}`);
      expect(Buffer.from(r.field(3))).toEqual(Buffer.from([0, 13, 10, i]));
    }
  });
});

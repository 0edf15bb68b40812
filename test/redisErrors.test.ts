/**
 * The classifier of Redis error replies (src/redis/errors.ts), without Redis: replies as both clients
 * deliver them — ioredis' `ReplyError` (redis-errors) and the reader's own (redis/respReader.ts).
 */
import { ReplyError as IoredisReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  CommitRefusedError,
  FencedError,
  LeaseLostError,
  NoGroupError,
  NoSuchKeyError,
  RedisReplyError,
  StateLostError,
  StreamshardError,
  WrongTypeError,
} from '../src/errors.js';
import { classifyRedisError, isReplyError } from '../src/redis/errors.js';
import { ReplyError as RespReplyError } from '../src/redis/respReader.js';

/** What a classified error looks like, all of it that callers read. */
function shape(e: unknown): Record<string, unknown> {
  if (!(e instanceof StreamshardError)) return { untyped: e };
  return {
    class: e.constructor.name,
    name: e.name,
    code: e.code,
    retriable: e.retriable,
    reply: e instanceof RedisReplyError ? e.reply : undefined,
    message: e.message,
  };
}

const REPLIES: Array<[string, Record<string, unknown>]> = [
  [
    'FENCED lease held by 8:b/1, not 7:a/2',
    { class: 'FencedError', name: 'FencedError', code: 'E_FENCED', retriable: true, reply: undefined },
  ],
  [
    'STATELOST last applied commit of shard 0 is nil, expected t#4',
    {
      class: 'StateLostError',
      name: 'StateLostError',
      code: 'E_STATE_LOST',
      retriable: false,
      reply: undefined,
    },
  ],
  [
    "NOGROUP No such key 'in' or consumer group 'g' in XREADGROUP with GROUP option",
    { class: 'NoGroupError', name: 'NoGroupError', code: 'E_NO_GROUP', retriable: false, reply: 'NOGROUP' },
  ],
  [
    'ERR no such key',
    {
      class: 'NoSuchKeyError',
      name: 'NoSuchKeyError',
      code: 'E_NO_SUCH_KEY',
      retriable: false,
      reply: 'ERR',
    },
  ],
  [
    'WRONGTYPE Operation against a key holding the wrong kind of value',
    {
      class: 'WrongTypeError',
      name: 'WrongTypeError',
      code: 'E_WRONG_TYPE',
      retriable: false,
      reply: 'WRONGTYPE',
    },
  ],
  [
    "OOM command not allowed when used memory > 'maxmemory'.",
    {
      class: 'RedisReplyError',
      name: 'RedisReplyError',
      code: 'E_REDIS_REPLY',
      retriable: true,
      reply: 'OOM',
    },
  ],
  [
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
    {
      class: 'RedisReplyError',
      name: 'RedisReplyError',
      code: 'E_REDIS_REPLY',
      retriable: true,
      reply: 'BUSY',
    },
  ],
  [
    'LOADING Redis is loading the dataset in memory',
    {
      class: 'RedisReplyError',
      name: 'RedisReplyError',
      code: 'E_REDIS_REPLY',
      retriable: true,
      reply: 'LOADING',
    },
  ],
  [
    "READONLY You can't write against a read only replica.",
    {
      class: 'RedisReplyError',
      name: 'RedisReplyError',
      code: 'E_REDIS_REPLY',
      retriable: true,
      reply: 'READONLY',
    },
  ],
  [
    'NOSCRIPT No matching script. Please use EVAL.',
    {
      class: 'RedisReplyError',
      name: 'RedisReplyError',
      code: 'E_REDIS_REPLY',
      retriable: true,
      reply: 'NOSCRIPT',
    },
  ],
  [
    'BUSYGROUP Consumer Group name already exists',
    {
      class: 'RedisReplyError',
      name: 'RedisReplyError',
      code: 'E_REDIS_REPLY',
      retriable: false,
      reply: 'BUSYGROUP',
    },
  ],
  [
    'ERR syntax error',
    {
      class: 'RedisReplyError',
      name: 'RedisReplyError',
      code: 'E_REDIS_REPLY',
      retriable: false,
      reply: 'ERR',
    },
  ],
  [
    'EXECABORT Transaction discarded because of previous errors.',
    {
      class: 'RedisReplyError',
      name: 'RedisReplyError',
      code: 'E_REDIS_REPLY',
      retriable: false,
      reply: 'EXECABORT',
    },
  ],
];

describe.each([
  ['ioredis', (m: string): Error => new IoredisReplyError(m) as Error],
  ['the reader', (m: string): Error => new RespReplyError(m)],
])('an error reply from %s', (_client, reply) => {
  it('is classified by its first word, keeping its message (the STATELOST one is prefixed as before)', () => {
    const got = REPLIES.map(([m]) => shape(classifyRedisError(reply(m))));
    const want = REPLIES.map(([m, s]) => ({
      ...s,
      message:
        s.class === 'StateLostError'
          ? `Redis lost acknowledged writes (a shard's previous commit is missing: restart without fsync, or failover): ${m}`
          : m,
    }));
    expect(got).toEqual(want);
  });

  it('keeps the reply as the cause and counts as an error reply, typed or not', () => {
    const original = reply('NOGROUP no such group');
    const typed = classifyRedisError(original);
    expect(typed).toBeInstanceOf(NoGroupError);
    expect((typed as Error).cause).toBe(original);
    expect([isReplyError(original), isReplyError(typed)]).toEqual([true, true]);
  });
});

it('typed subclasses are RedisReplyErrors; FENCED and STATELOST are not (a commit refusal counts only those)', () => {
  const of = (m: string): unknown => classifyRedisError(new RespReplyError(m));
  expect([
    of('NOGROUP x') instanceof RedisReplyError,
    of('ERR no such key') instanceof RedisReplyError,
    of('WRONGTYPE x') instanceof RedisReplyError,
    of('FENCED x') instanceof RedisReplyError,
    of('STATELOST x') instanceof RedisReplyError,
  ]).toEqual([true, true, true, false, false]);
  expect([isReplyError(of('FENCED x')), isReplyError(of('STATELOST x'))]).toEqual([false, false]);
  expect(of('WRONGTYPE x')).toBeInstanceOf(WrongTypeError);
  expect(of('ERR no such key')).toBeInstanceOf(NoSuchKeyError);
  expect(of('STATELOST x')).toBeInstanceOf(StateLostError);
  expect(of('FENCED x')).toBeInstanceOf(FencedError);
});

it('leaves everything that is not an error reply as it is, and typed errors too (classifying twice is harmless)', () => {
  const connection = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
    code: 'ECONNREFUSED',
  });
  const closed = new Error('Connection is closed.');
  const injected = Object.assign(new Error('injected fault: commit reply lost'), { name: 'ConnectionError' });
  const fenced = new FencedError('FENCED lease held by null, not 1:a');
  const typed = classifyRedisError(new RespReplyError('OOM x'));
  const values: unknown[] = [
    connection,
    closed,
    injected,
    fenced,
    typed,
    'FENCED as a string',
    undefined,
    null,
  ];
  expect(values.map((v) => classifyRedisError(v))).toEqual(values);
  for (const v of values) expect(classifyRedisError(v)).toBe(v);
  expect([
    isReplyError(connection),
    isReplyError(closed),
    isReplyError(injected),
    isReplyError(fenced),
  ]).toEqual([false, false, false, false]);
});

it('the typed errors of the engine keep their messages and carry stable codes', () => {
  const refused = new CommitRefusedError(5, new RespReplyError('OOM command not allowed'));
  expect(
    [StateLostError.serverChanged('aaa', 'bbb'), new LeaseLostError('9:b/1'), refused].map(shape),
  ).toEqual([
    {
      class: 'StateLostError',
      name: 'StateLostError',
      code: 'E_STATE_LOST',
      retriable: false,
      reply: undefined,
      message: 'Redis restarted or failed over (run_id aaa → bbb): reloading state from Redis',
    },
    {
      class: 'LeaseLostError',
      name: 'LeaseLostError',
      code: 'E_LEASE_LOST',
      retriable: false,
      reply: undefined,
      message: 'the lease is held by 9:b/1: another instance took over this pipeline',
    },
    {
      class: 'CommitRefusedError',
      name: 'CommitRefusedError',
      code: 'E_COMMIT_REFUSED',
      retriable: false,
      reply: undefined,
      message: 'commit refused by Redis 5 times: OOM command not allowed',
    },
  ]);
  expect(new LeaseLostError('9:b/1').holder).toBe('9:b/1');
  expect(refused.cause).toBeInstanceOf(RespReplyError);
});

/**
 * Redis error replies arrive typed where the code meets Redis (src/redis/errors.ts): the reader's reads,
 * the incarnation lookups. The engine decides on these types (NOGROUP → check the incarnation, FENCED →
 * try the lease), so a reply that arrived untyped would silently skip its branch.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Incarnation } from '../src/commit/incarnation.js';
import { FencedError, NoGroupError, StaleStateError } from '../src/errors.js';
import { CheckpointKeys } from '../src/redis/checkpointKeys.js';
import { RespConnection } from '../src/redis/respConnection.js';
import { RedisSource } from '../src/source/redisSource.js';
import { testNames } from './helpers/pipeline.js';
import { connect, redisUrl } from './helpers/redis.js';

let redis: Redis;
let reader: RespConnection;

beforeAll(async () => {
  redis = await connect();
  reader = new RespConnection({ url: redisUrl(), name: 'test:seam', connectTimeoutMs: 2000 });
  await reader.connect();
});

afterAll(() => {
  reader?.disconnect();
  redis?.disconnect();
});

function sourceFor(n: ReturnType<typeof testNames>, token: string): RedisSource {
  const leaseKey = new CheckpointKeys(n.keyPrefix, n.input, n.group).lease();
  return new RedisSource(reader, {
    stream: n.input,
    group: n.group,
    consumer: n.consumer,
    batchSize: 10,
    blockMs: 50,
    fence: () => ({ leaseKey, token }),
  });
}

it('a read from a group that does not exist fails with NoGroupError, the reply its message', async () => {
  const n = testNames('seam-nogroup');
  await redis.xadd(n.input, '*', 'key', 'k');
  const replay = await sourceFor(n, 't')
    .read()
    .catch((e: unknown) => e); // own pending entries first (0)
  expect(replay).toBeInstanceOf(NoGroupError);
  expect((replay as NoGroupError).code).toBe('E_NO_GROUP');
  expect((replay as Error).message).toMatch(/^NOGROUP /);
});

it('a read of new entries without the lease fails with FencedError, in the words it always used', async () => {
  const n = testNames('seam-fenced');
  await redis.xgroup('CREATE', n.input, n.group, '0', 'MKSTREAM');
  const lease = new CheckpointKeys(n.keyPrefix, n.input, n.group).lease();
  await redis.set(lease, '2:other');
  const source = sourceFor(n, '1:me');
  await source.read(); // the replay of own pending entries: not fenced, finds none
  const late = await source.read().catch((e: unknown) => e);
  expect(late).toBeInstanceOf(FencedError);
  expect((late as Error).message).toBe('FENCED lease held by 2:other, not 1:me');
  expect(await redis.xinfo('GROUPS', n.input)).toEqual([
    expect.arrayContaining(['pending', 0, 'last-delivered-id', '0-0']),
  ]);
});

it('the incarnation check still tells a missing stream, a missing group and a key of another type apart', async () => {
  const n = testNames('seam-incarnation');
  const keys = new CheckpointKeys(n.keyPrefix, n.input, n.group);
  const source = { stream: n.input, group: n.group, createGroup: true, startId: '0' as const };
  const incarnation = new Incarnation(redis, keys, source, 'reset');
  expect(await incarnation.establish()).toBe('created');
  const why = async (): Promise<string> => {
    const e = await incarnation.verify().then(
      () => 'same',
      (err: unknown) => err,
    );
    if (typeof e === 'string') return e;
    expect(e).toBeInstanceOf(StaleStateError);
    return (e as Error).message.split(',')[0] as string;
  };
  const before = await why();
  await redis.xgroup('DESTROY', n.input, n.group);
  const noGroup = await why();
  await redis.del(n.input);
  const noStream = await why();
  await redis.set(n.input, 'x');
  const notAStream = await why();
  expect([before, noGroup, noStream, notAStream]).toEqual([
    'same',
    `the consumer group "${n.group}" no longer exists on stream "${n.input}" (destroyed with XGROUP DESTROY`,
    `the input stream "${n.input}" no longer exists (deleted`,
    `the input key "${n.input}" is not a stream (deleted and re-created as another type?): fix or rename it; if it was replaced on purpose`,
  ]);
});

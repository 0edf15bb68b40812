/**
 * The script loader (src/redis/scripts/script.ts) against a real redis-server of its own — SCRIPT FLUSH
 * and CONFIG RESETSTAT would disturb the tests that share the global one.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { applyOps } from '../src/commit/applyOps.js';
import { FencedError, NoGroupError, WrongTypeError } from '../src/errors.js';
import { APPLY_OPS_3, applyOpsScript } from '../src/redis/scripts/applyOps-2.js';
import { leaseAcquireScript } from '../src/redis/scripts/leaseAcquire-2.js';
import { leaseReleaseScript } from '../src/redis/scripts/leaseRelease-1.js';
import { Script } from '../src/redis/scripts/script.js';
import { trimSafeScript } from '../src/redis/scripts/trimSafe-1.js';
import { xaddManyScript } from '../src/redis/scripts/xaddMany-1.js';
import { OpsWriter } from '../src/shard/opsCodec.js';
import { type LocalRedis, startLocalRedis } from '../src/tools/localRedis.js';

let server: LocalRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startLocalRedis();
  redis = new Redis(server.url, { protocol: 2, enableAutoPipelining: false });
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

beforeEach(async () => {
  await redis.script('FLUSH');
  await redis.config('RESETSTAT');
});

/** Calls of EVALSHA and EVAL since the last CONFIG RESETSTAT (failed ones included), from INFO. */
async function scriptCalls(): Promise<{ evalsha: number; eval: number }> {
  const info = await redis.info('commandstats');
  const calls = (cmd: string): number => {
    // `calls` counts the failed ones too (NOSCRIPT, an error reply); rejected ones never ran
    const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+),.*?rejected_calls=(\\d+)`).exec(info);
    return m === null ? 0 : Number(m[1]) + Number(m[2]);
  };
  return { evalsha: calls('evalsha'), eval: calls('eval') };
}

const echo = new Script('TEST_ECHO_1', "return {KEYS[1], ARGV[1], ARGV[2], 'echo'}", 1);

it('after SCRIPT FLUSH, a call gets NOSCRIPT once, is sent again as EVAL once, and the script is cached again', async () => {
  expect(await redis.script('EXISTS', echo.sha)).toEqual([0]);
  expect(await echo.run(redis, ['k'], ['a', 7])).toEqual(['k', 'a', '7', 'echo']);
  expect(await scriptCalls()).toEqual({ evalsha: 1, eval: 1 });
  expect(await redis.script('EXISTS', echo.sha)).toEqual([1]);
  // cached now: one EVALSHA, no EVAL
  expect(await echo.run(redis, ['k2'], [Buffer.from('b'), 'c'])).toEqual(['k2', 'b', 'c', 'echo']);
  expect(await scriptCalls()).toEqual({ evalsha: 2, eval: 1 });
  // flushed again mid-run: recovered again, once
  await redis.script('FLUSH');
  expect(await echo.run(redis, ['k3'], ['x', 'y'])).toEqual(['k3', 'x', 'y', 'echo']);
  expect(await scriptCalls()).toEqual({ evalsha: 3, eval: 2 });
});

it('load() caches the script, so that the first call is one EVALSHA', async () => {
  await echo.load(redis);
  expect(await echo.run(redis, ['k'], ['a', 'b'])).toEqual(['k', 'a', 'b', 'echo']);
  expect(await scriptCalls()).toEqual({ evalsha: 1, eval: 0 });
});

it('error replies come back classified, from EVALSHA and from the EVAL after a NOSCRIPT alike', async () => {
  const fails = new Script(
    'TEST_FAILS_1',
    "if ARGV[1] == 'fenced' then return redis.error_reply('FENCED lease held by x, not y') end\n" +
      "if ARGV[1] == 'nogroup' then return redis.call('XREADGROUP', 'GROUP', 'nope', 'c', 'STREAMS', KEYS[1], '>') end\n" +
      "return redis.call('XLEN', KEYS[1])",
    1,
  );
  const key = `scripts:${randomBytes(4).toString('hex')}`;
  await redis.set(key, 'not a stream');
  const outcome = async (arg: string, k = key) => {
    const e = await fails.run(redis, [k], [arg]).catch((err: unknown) => err);
    return [(e as Error).constructor.name, (e as Error).message.split(' ')[0]];
  };
  // the first call runs as EVAL (NOSCRIPT), the others as EVALSHA
  expect([
    await outcome('fenced'),
    await outcome('nogroup', `${key}:missing`),
    await outcome('wrongtype'),
  ]).toEqual([
    [FencedError.name, 'FENCED'],
    [NoGroupError.name, 'NOGROUP'],
    [WrongTypeError.name, 'WRONGTYPE'],
  ]);
  expect(await scriptCalls()).toEqual({ evalsha: 3, eval: 1 });
  expect(await fails.run(redis, [key], ['fenced']).catch((e: unknown) => e)).toMatchObject({
    code: 'E_FENCED',
    message: 'FENCED lease held by x, not y',
  });
});

it("a script declared send: 'eval' (lease, trim) goes as EVAL every time, never EVALSHA", async () => {
  const perCall = new Script('TEST_EVAL_1', 'return ARGV[1]', 1, { send: 'eval' });
  expect([await perCall.run(redis, ['k'], ['a']), await perCall.run(redis, ['k'], ['b'])]).toEqual([
    'a',
    'b',
  ]);
  const ns = `scripts:${randomBytes(4).toString('hex')}`;
  await leaseAcquireScript.run(redis, [`${ns}:lease`, `${ns}:epoch`], ['me', 1000, '']);
  await leaseReleaseScript.run(redis, [`${ns}:lease`], ['1:me']);
  await redis.xadd(`${ns}:in`, '*', 'f', 'v');
  await trimSafeScript.run(redis, [`${ns}:in`], []);
  expect(await scriptCalls()).toEqual({ evalsha: 0, eval: 5 });
  expect(await redis.exists(`${ns}:lease`)).toBe(0);
});

it('a call with the wrong number of keys is refused before anything is sent', async () => {
  await expect(echo.run(redis, ['a', 'b'], [])).rejects.toThrow('TEST_ECHO_1 takes 1 keys, got 2');
  expect(await scriptCalls()).toEqual({ evalsha: 0, eval: 0 });
});

it('the commit script is fenced after SCRIPT FLUSH too, and applies once the token is right', async () => {
  const ns = `scripts:${randomBytes(4).toString('hex')}`;
  const fence = { leaseKey: `${ns}:lease`, appliedKey: `${ns}:applied`, token: '1:a', term: 't' };
  await redis.set(fence.leaseKey, '2:b');
  const w = new OpsWriter();
  w.reset();
  const list = w.beginArray();
  w.array(5);
  for (const a of ['XADD', `${ns}:out`, '*', 'f', 'v']) w.arg(a);
  w.endArray(list, 1);
  const blob = w.finish();
  const late = await applyOps(redis, fence, 0, 0, blob).catch((e: unknown) => e);
  expect(late).toBeInstanceOf(FencedError);
  expect((late as Error).message).toBe('FENCED lease held by 2:b, not 1:a');
  expect(await redis.script('EXISTS', applyOpsScript.sha)).toEqual([1]);
  expect(await redis.exists(`${ns}:out`)).toBe(0);
  await redis.script('FLUSH');
  expect(await applyOps(redis, { ...fence, token: '2:b' }, 0, 0, blob)).toBe(true);
  expect(await applyOps(redis, { ...fence, token: '2:b' }, 0, 0, blob)).toBe(false); // the same commit ID
  expect(await redis.xlen(`${ns}:out`)).toBe(1);
  expect(await scriptCalls()).toEqual({ evalsha: 3, eval: 2 });
});

it('every script module exports its source and key count, and the SHA of its source', async () => {
  const scripts = [applyOpsScript, leaseAcquireScript, leaseReleaseScript, trimSafeScript, xaddManyScript];
  expect(scripts.map((s) => [s.name, s.numberOfKeys])).toEqual([
    ['APPLY_OPS_3', 2],
    ['LEASE_ACQUIRE_1', 2],
    ['LEASE_RELEASE_1', 1],
    ['TRIM_SAFE_1', 1],
    ['XADD_MANY_1', 1],
  ]);
  expect(applyOpsScript.source).toBe(APPLY_OPS_3);
  for (const s of scripts) await s.load(redis);
  expect(await redis.script('EXISTS', ...scripts.map((s) => s.sha))).toEqual([1, 1, 1, 1, 1]);
});

/**
 * Membership on a real Redis: heartbeats keep members alive on the server's clock, a member that stops
 * heartbeating drops out after its TTL, a leaving member goes at once.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Membership } from '../src/partition/membership.js';
import { connect, uniqueName, waitFor } from './helpers/redis.js';

let redis: Redis;
beforeAll(async () => {
  redis = await connect();
});
afterAll(async () => {
  await redis.quit();
});

it('keeps heartbeating members, drops a silent one after its TTL, and lets one leave at once', async () => {
  const key = Membership.keyOf(uniqueName('members'), 'orders', 'g');
  expect(key).toMatch(/\{orders:g\}:members$/);
  const ttl = 400;
  const a = new Membership(redis, key, 'a/1', ttl);
  const b = new Membership(redis, key, 'b/1', ttl);
  const c = new Membership(redis, key, 'c/1', ttl);
  await a.heartbeat();
  await b.heartbeat();
  expect(await c.heartbeat()).toEqual(['a/1', 'b/1', 'c/1']);
  // a and c keep heartbeating; b stops: it is gone once its TTL has passed on the server's clock
  await waitFor('b to drop out', async () => {
    await c.heartbeat();
    const live = await a.heartbeat();
    return !live.includes('b/1') && live;
  });
  expect(await c.leave()).toEqual(['a/1']);
  expect(await redis.pttl(key)).toBeGreaterThan(0); // the set itself expires when everyone is gone
});

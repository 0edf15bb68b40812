/**
 * `MEMBERSHIP_1` (partition/membership.ts). KEYS: the pipeline's members sorted set. ARGV: member ID,
 * `join` or `leave`, TTL ms. Drops members whose heartbeat expired (score = expiry on the server's clock),
 * then records this member's heartbeat (or removes it), and returns the live members. The server's clock
 * is the only one: instances with skewed clocks still agree on who is alive.
 */
import { Script } from './script.js';

export const MEMBERSHIP_1 = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[2] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ttl * 10)
return redis.call('ZRANGE', KEYS[1], 0, -1)`;

export const membershipScript = new Script('MEMBERSHIP_1', MEMBERSHIP_1, 1, { send: 'eval' });

/**
 * `LEASE_ACQUIRE_1` (lease/lease.ts): acquires, renews or resumes the pipeline lease.
 *
 * KEYS: `<ns>:lease`, `<ns>:epoch`. ARGV: owner, ttl ms, the token held before (or ""). Returns
 * `{1, token}` when held (acquired, renewed, or resumed after a lapse nobody else used), else
 * `{0, holder, pttl}`.
 */
import { Script } from './script.js';

export const LEASE_ACQUIRE_1 = `local lease, epoch = KEYS[1], KEYS[2]
local owner, ttl, mine = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('GET', lease)
if cur then
  if cur == mine then
    redis.call('PEXPIRE', lease, ttl)
    return {1, cur}
  end
  return {0, cur, redis.call('PTTL', lease)}
end
if mine ~= '' and (tostring(redis.call('GET', epoch)) .. ':' .. owner) == mine then
  redis.call('SET', lease, mine, 'PX', ttl)
  return {1, mine}
end
local token = redis.call('INCR', epoch) .. ':' .. owner
redis.call('SET', lease, token, 'PX', ttl)
return {1, token}`;

export const leaseAcquireScript = new Script('LEASE_ACQUIRE_1', LEASE_ACQUIRE_1, 2, { send: 'eval' });

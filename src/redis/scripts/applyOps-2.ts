/**
 * `APPLY_OPS_3`, the commit script (called by commit/applyOps.ts, which describes its guards).
 *
 * KEYS: `<ns>:lease`, `<ns>:applied`. ARGV: lease token, shard, commit ID, the msgpack op list, the
 * shard's previous commit ID (or ''). Returns the number of ops run, or -1 when the commit ID was applied
 * already; error replies `FENCED …` (another token holds the lease) and `STATELOST …` (the previous commit
 * is missing), both before any write.
 */
import { Script } from './script.js';

export const APPLY_OPS_3 = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED lease held by ' .. tostring(redis.call('GET', KEYS[1])) .. ', not ' .. ARGV[1])
end
local last = redis.call('HGET', KEYS[2], ARGV[2])
if last == ARGV[3] then return -1 end
if ARGV[5] ~= '' and last ~= ARGV[5] then
  return redis.error_reply('STATELOST last applied commit of shard ' .. ARGV[2] .. ' is ' .. tostring(last) .. ', expected ' .. ARGV[5])
end
local ops = cmsgpack.unpack(ARGV[4])
for i = 1, #ops do
  redis.call(unpack(ops[i]))
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return #ops`;

export const applyOpsScript = new Script('APPLY_OPS_3', APPLY_OPS_3, 2);

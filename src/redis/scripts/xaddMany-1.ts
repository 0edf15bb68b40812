/**
 * `XADD_MANY_1` (tools/produce/producer.ts): appends a chunk of entries in one call.
 *
 * KEYS[1] = stream; ARGV[1] = MAXLEN (`~`) or ''; then per entry: its field count c, then its c field
 * names and values. XADDs each entry with an auto ID; returns the number of entries added.
 */
import { Script } from './script.js';

export const XADD_MANY_1 = `local key, maxlen = KEYS[1], ARGV[1]
local i, n, added = 2, #ARGV, 0
while i <= n do
  local c = tonumber(ARGV[i])
  if maxlen == '' then
    redis.call('XADD', key, '*', unpack(ARGV, i + 1, i + c))
  else
    redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', unpack(ARGV, i + 1, i + c))
  end
  i = i + c + 1
  added = added + 1
end
return added`;

export const xaddManyScript = new Script('XADD_MANY_1', XADD_MANY_1, 1);

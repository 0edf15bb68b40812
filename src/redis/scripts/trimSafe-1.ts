/**
 * `TRIM_SAFE_1` (source/trim.ts, which explains the floor): trims the input stream below what every
 * group still needs. KEYS: the stream. Returns `{floor, trimmed}`: the MINID used ('' when no group
 * exists) and the number of entries removed.
 */
import { Script } from './script.js';

export const TRIM_SAFE_1 = `local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local best_ms, best_seq = nil, nil
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  local ms, seq
  if tonumber(f['pending']) > 0 then
    local summary = redis.call('XPENDING', KEYS[1], f['name'])
    ms, seq = string.match(summary[2], '(%d+)-(%d+)')
    ms, seq = tonumber(ms), tonumber(seq)
  else
    ms, seq = string.match(f['last-delivered-id'], '(%d+)-(%d+)')
    ms, seq = tonumber(ms), tonumber(seq) + 1
  end
  if best_ms == nil or ms < best_ms or (ms == best_ms and seq < best_seq) then
    best_ms, best_seq = ms, seq
  end
end
if best_ms == nil then return {'', 0} end
local floor = string.format('%d-%d', best_ms, best_seq)
return {floor, redis.call('XTRIM', KEYS[1], 'MINID', '~', floor)}`;

export const trimSafeScript = new Script('TRIM_SAFE_1', TRIM_SAFE_1, 1, { send: 'eval' });

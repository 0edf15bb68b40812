/**
 * Safe input trimming (`source.trim`): removes only entries that no consumer group on the stream still
 * needs. For each group the floor is its oldest pending entry, or — with nothing pending — the entry after
 * its last-delivered ID (entries after it are not read yet). The stream is trimmed with `XTRIM MINID ~`
 * below the lowest floor of all groups. `~` trims whole internal nodes only, so it may keep a few more
 * entries, never fewer.
 *
 * One script, so no group can read, ack or be created between computing the floor and trimming. (Redis
 * 8.2's ack-aware trimming, `XTRIM … ACKED`, does the same on the server; this works from 6.2.)
 */
import type { Redis } from 'ioredis';

/** Returns `{floor, trimmed}`: the MINID used ('' when no group exists) and the number of entries removed. */
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

export async function trimSafely(redis: Redis, stream: string): Promise<{ floor: string; trimmed: number }> {
  const [floor, trimmed] = (await redis.eval(TRIM_SAFE_1, 1, stream)) as [string, number];
  return { floor, trimmed: Number(trimmed) };
}

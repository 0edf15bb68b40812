/**
 * `APPLY_OPS_3`, the commit script (called by commit/applyOps.ts, which describes its guards).
 *
 * KEYS: `<ns>:lease`, `<ns>:applied`. ARGV: lease token, shard, commit ID, the msgpack op list, the
 * shard's previous commit ID (or ''). Returns the number of ops run, or -1 when the commit ID was applied
 * already; error replies `FENCED …` (another token holds the lease) and `STATELOST …` (the previous commit
 * is missing), both before any write. Every op is a Redis command, except `PROJSPEC` and `PROJECT` (below).
 */
import { Script } from './script.js';

/**
 * The projection ops (shard/stages/project/projectStage.ts builds them). `PROJSPEC ttl (code field)…`
 * sets the reducers of the PROJECT ops after it; `PROJECT key pos value…` merges one key's batch into its
 * hash with two calls: one HMGET of the fields whose old value matters, one HSET of every field that
 * changes (and `_pos` ← pos), then PEXPIRE ttl when ttl is not ''. One value per reducer, `false` for
 * none: `s` set (latest), `f` set if absent (first), `c` add an integer (count), `n`/`x` keep the
 * smaller/larger number (min, max, last_seen); `+` takes `n v1…vn` and adds them one at a time in order
 * (sum: the same left fold of doubles however batches were cut). A sum or count is written as the
 * shortest of %.15g/%.16g/%.17g that reads back as the same double (integers below 1e15 as integers).
 */
const PROJECT_LUA = `local function fmt(x)
  if x == math.floor(x) and x > -1e15 and x < 1e15 then return string.format('%.0f', x) end
  for p = 15, 16 do
    local s = string.format('%.' .. p .. 'g', x)
    if tonumber(s) == x then return s end
  end
  return string.format('%.17g', x)
end
local spec, want = nil, nil
local function projspec(op)
  spec, want = op, {}
  for i = 3, #op, 2 do
    if op[i] ~= 's' then want[#want + 1] = op[i + 1] end
  end
end
local function project(op)
  local key = op[2]
  local cur = {}
  if #want > 0 then
    local got = redis.call('HMGET', key, unpack(want))
    for j = 1, #want do cur[want[j]] = got[j] end
  end
  local set = {'HSET', key, '_pos', op[3]}
  local at = 4
  for i = 3, #spec, 2 do
    local c, f, v = spec[i], spec[i + 1], op[at]
    local old = cur[f]
    local new = false
    if c == '+' then
      local k = tonumber(v)
      local s = tonumber(old or '0')
      for j = at + 1, at + k do s = s + tonumber(op[j]) end
      if k > 0 then new = fmt(s) end
      at = at + k
    elseif v then
      if c == 's' then
        new = v
      elseif c == 'f' then
        if not old then new = v end
      elseif c == 'c' then
        new = fmt(tonumber(old or '0') + tonumber(v))
      elseif c == 'n' then
        if not old or tonumber(v) < tonumber(old) then new = v end
      elseif not old or tonumber(v) > tonumber(old) then
        new = v
      end
    end
    if new then
      set[#set + 1] = f
      set[#set + 1] = new
    end
    at = at + 1
  end
  redis.call(unpack(set))
  if spec[2] ~= '' then redis.call('PEXPIRE', key, spec[2]) end
end`;

export const APPLY_OPS_3 = `${PROJECT_LUA}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED lease held by ' .. tostring(redis.call('GET', KEYS[1])) .. ', not ' .. ARGV[1])
end
local last = redis.call('HGET', KEYS[2], ARGV[2])
if last == ARGV[3] then return -1 end
if ARGV[5] ~= '' and last ~= ARGV[5] then
  return redis.error_reply('STATELOST last applied commit of shard ' .. ARGV[2] .. ' is ' .. tostring(last) .. ', expected ' .. ARGV[5])
end
local ops = cmsgpack.unpack(ARGV[4])
for i = 1, #ops do
  local op = ops[i]
  if op[1] == 'PROJECT' then project(op)
  elseif op[1] == 'PROJSPEC' then projspec(op)
  else redis.call(unpack(op)) end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return #ops`;

export const applyOpsScript = new Script('APPLY_OPS_3', APPLY_OPS_3, 2);

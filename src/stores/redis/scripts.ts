/**
 * The Redis store's Lua scripts, one per verb, each with what goes in and what comes out.
 * They all start with the same prelude: read the resource's hash, drop the entries whose TTL
 * ran out on the server's clock (`TIME`), and sort the live ones by arrival. The grant rule
 * is core/queue.ts's `canHold`, written again in Lua.
 *
 * One hash per resource, `{prefix:kind:name}:s` (the braces keep a resource's keys in one
 * cluster slot):
 *   fence      last token issued; only grows. A new fence starts at the server's clock in
 *              microseconds, so that if Redis restarts without its data, tokens start again
 *              above every token issued before (unless more than one grant per microsecond
 *              was made on average since the resource was first used)
 *   seq        arrival counter
 *   e:<owner>  one entry: JSON {seq, mode, limit, held, token, ttl, exp, wake, value, want}
 *              (`want`: the lease TTL a queued entry asked for; `ask`: the id of the
 *              request that last refreshed it)
 * The hash has no TTL of its own: the fence must outlive every lease.
 *
 * A mutex also keeps its holder in the plain string key `{prefix:mutex:name}` (KEYS[2]),
 * `SET key owner PX ttl`, so that services using the classic `SET key owner NX PX` and
 * compare-and-delete recipe on that key exclude with baton. For a mutex the plain key is the
 * truth: a baton holder whose plain key is gone or taken has lost the lock, and an owner in
 * the plain key that baton does not know is a holder from outside, ahead of everyone until
 * its PTTL runs out. Other kinds pass an empty KEYS[2] name and never touch it.
 */

const PRELUDE = `
local key = KEYS[1]
local plain = KEYS[2]
local is_mutex = ARGV[#ARGV] == 'mutex'
local fenced = ARGV[#ARGV - 1] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function can_hold(mode, limit, ahead)
  if #ahead >= limit then return false end
  if mode == 'exclusive' then return #ahead == 0 end
  for _, e in ipairs(ahead) do if e.mode ~= 'shared' then return false end end
  return true
end

-- Live entries sorted by arrival; dead ones are deleted. For a mutex, a holder is also dead
-- unless the plain key names it, and an unknown owner in the plain key comes first, as a
-- holder from outside (marked foreign, never saved).
local function live_entries()
  local raw = redis.call('HGETALL', key)
  local list = {}
  for i = 1, #raw, 2 do
    local field = raw[i]
    if string.sub(field, 1, 2) == 'e:' then
      local e = cjson.decode(raw[i + 1])
      e.owner = string.sub(field, 3)
      if e.exp > now then table.insert(list, e) else redis.call('HDEL', key, field) end
    end
  end
  table.sort(list, function(a, b) return a.seq < b.seq end)
  if is_mutex then
    local holder = redis.call('GET', plain)
    local kept, known = {}, false
    for _, e in ipairs(list) do
      if e.held == 1 and e.owner ~= holder then redis.call('HDEL', key, 'e:' .. e.owner)
      else
        if e.held == 1 then known = true end
        table.insert(kept, e)
      end
    end
    list = kept
    if holder and not known then
      local left = redis.call('PTTL', plain)
      if left < 0 then left = 1000 end
      table.insert(list, 1, {owner = holder, seq = -1, mode = 'exclusive', limit = 1, held = 1, token = '0', ttl = left, exp = now + left, wake = '', value = '', foreign = true})
    end
  end
  return list
end

local function save(e)
  local owner = e.owner
  e.owner = nil
  redis.call('HSET', key, 'e:' .. owner, cjson.encode(e))
  e.owner = owner
end

-- Without a fence (a quorum's nodes), nothing outlives the entries: the hash expires with
-- the last one, and goes at once when none is left.
local function done(result)
  if not fenced then
    local raw = redis.call('HGETALL', key)
    local last = 0
    for i = 1, #raw, 2 do
      if string.sub(raw[i], 1, 2) == 'e:' then
        local exp = cjson.decode(raw[i + 1]).exp
        if exp > last then last = exp end
      end
    end
    if last <= now then redis.call('DEL', key) else redis.call('PEXPIRE', key, last - now) end
  end
  return result
end

local function next_token()
  if not fenced then return '0' end
  redis.call('HSETNX', key, 'fence', string.format('%d', now_us))
  -- Tokens pass 10^15: kept as exact decimal strings, since cjson prints numbers with 14 digits.
  return string.format('%d', redis.call('HINCRBY', key, 'fence', 1))
end

-- Queued entries that may hold now are granted here and told so by their wake channel
-- ("owner token ttl ask", ask being the id of the request that last refreshed the entry, on
-- which the TTL is based), in arrival order; no other entry is woken. A hand-off's TTL runs from
-- the waiter's last request (exp - ttl of its queued entry), and is at most that entry's TTL,
-- so a waiter that died while queued blocks the lock no longer than its queue entry would
-- have; the waiter extends it if it holds long enough. An entry with too little time left
-- is only woken ("owner") to ask again.
local function wake_grantable(list, except)
  for i, e in ipairs(list) do
    if e.held == 0 and e.wake ~= '' and e.owner ~= except then
      local ahead = {}
      for j = 1, i - 1 do table.insert(ahead, list[j]) end
      if can_hold(e.mode, e.limit, ahead) then
        local ttl = math.min(tonumber(e.want) or 0, e.ttl)
        local exp = e.exp - e.ttl + ttl
        if exp - now >= 2 then
          local wake = e.wake
          e.held, e.token, e.ttl, e.exp, e.wake, e.want = 1, next_token(), ttl, exp, '', nil
          save(e)
          if is_mutex then redis.call('SET', plain, e.owner, 'PX', exp - now) end
          redis.call('PUBLISH', wake, e.owner .. ' ' .. e.token .. ' ' .. ttl .. ' ' .. (e.ask or ''))
        else
          redis.call('PUBLISH', e.wake, e.owner)
        end
      end
    end
  end
end
`;

/**
 * Every script: KEYS = resource hash, plain mutex key; the last two ARGV are fenced (1|0)
 * and the lock's kind. A store made with `fencing: false` keeps no fence: tokens are '0',
 * and the hash lives no longer than its entries.
 *
 * grant. ARGV: owner, mode, limit, ttlMs, enqueue (0|1), queueTtlMs, value, wake channel, ask (the request's id, echoed in a hand-off), fenced, kind. Returns {1, token} when granted; {0, position, retryAfterMs (-1 if none)} when not.
 */
export const GRANT = `${PRELUDE}
local owner, mode, limit, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local enqueue, queue_ttl, value, wake, ask = ARGV[5] == '1', tonumber(ARGV[6]), ARGV[7], ARGV[8], ARGV[9]
local list = live_entries()
local mine = nil
for _, e in ipairs(list) do if e.owner == owner then mine = e end end
if mine and mine.held == 1 then
  if mine.foreign then return done({1, mine.token}) end
  -- Granted by a hand-off this request crossed: the TTL asked for starts now.
  mine.ttl, mine.exp = ttl, now + ttl
  save(mine)
  if is_mutex then redis.call('SET', plain, owner, 'PX', ttl) end
  return done({1, mine.token})
end
local ahead = {}
for _, e in ipairs(list) do if mine == nil or e.seq < mine.seq then table.insert(ahead, e) end end
if can_hold(mode, limit, ahead) then
  local token = next_token()
  local seq = mine and mine.seq or redis.call('HINCRBY', key, 'seq', 1)
  save({owner = owner, seq = seq, mode = mode, limit = limit, held = 1, token = token, ttl = ttl, exp = now + ttl, wake = '', value = value})
  if is_mutex then redis.call('SET', plain, owner, 'PX', ttl) end
  return done({1, token})
end
if enqueue then
  local seq = mine and mine.seq or redis.call('HINCRBY', key, 'seq', 1)
  save({owner = owner, seq = seq, mode = mode, limit = limit, held = 0, token = '0', ttl = queue_ttl, exp = now + queue_ttl, wake = wake, value = value, want = ttl, ask = ask})
end
local soonest = -1
for _, e in ipairs(ahead) do
  local left = e.exp - now
  if soonest < 0 or left < soonest then soonest = left end
end
return done({0, #ahead, soonest})
`;

/** extend. ARGV: owner, ttlMs, fenced, kind. Returns 1 if the owner held the resource and its TTL was reset, else 0. */
export const EXTEND = `${PRELUDE}
local owner, ttl = ARGV[1], tonumber(ARGV[2])
for _, e in ipairs(live_entries()) do
  if e.owner == owner and e.held == 1 and not e.foreign then
    e.ttl = ttl
    e.exp = now + ttl
    save(e)
    if is_mutex then redis.call('PEXPIRE', plain, ttl) end
    return done(1)
  end
end
return done(0)
`;

/** release. ARGV: owner, fenced, kind. Removes the owner's entry (holding or queued), wakes whoever may now hold; returns 1 if there was one, else 0. */
export const RELEASE = `${PRELUDE}
local owner = ARGV[1]
local list = live_entries()
local rest, found = {}, 0
for _, e in ipairs(list) do
  if e.owner == owner and not e.foreign then found = 1 else table.insert(rest, e) end
end
if found == 0 then return done(0) end
redis.call('HDEL', key, 'e:' .. owner)
if is_mutex and redis.call('GET', plain) == owner then redis.call('DEL', plain) end
wake_grantable(rest, owner)
return done(1)
`;

/** force-release. ARGV: fenced, kind. Removes every holder, wakes whoever may now hold; returns how many holders were removed. */
export const FORCE_RELEASE = `${PRELUDE}
local rest, removed = {}, 0
for _, e in ipairs(live_entries()) do
  if e.held == 1 then
    if e.foreign then redis.call('DEL', plain) else redis.call('HDEL', key, 'e:' .. e.owner) end
    if is_mutex and not e.foreign then redis.call('DEL', plain) end
    removed = removed + 1
  else
    table.insert(rest, e)
  end
end
if removed > 0 then wake_grantable(rest, '') end
return done(removed)
`;

/** inspect. ARGV: fenced, kind. Returns JSON {fence, entries: [{owner, seq, mode, limit, held, token, ttl, left, value}]}, live entries in arrival order. */
export const INSPECT = `${PRELUDE}
local out = {}
for _, e in ipairs(live_entries()) do
  table.insert(out, {owner = e.owner, mode = e.mode, held = e.held, token = e.token, ttl = e.ttl, left = e.exp - now, value = e.value})
end
local fence = redis.call('HGET', key, 'fence') or '0'
if #out == 0 then return cjson.encode({fence = fence, entries = {}, empty = true}) end
return cjson.encode({fence = fence, entries = out})
`;

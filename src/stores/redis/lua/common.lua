-- common.lua: the prelude of every baton script; scripts/lua.mjs puts it in front of each
-- verb's file. It reads the resource's state and keeps its keys in step; a verb's file says
-- what goes in and what comes out.
--
-- Keys of one resource, all inside one hash tag (one cluster slot), T = {prefix:kind:name}:
--   T:s  hash  fence       last token issued; only grows. It starts at the server's clock in
--                          microseconds, so that if Redis restarts without its data, tokens
--                          start again above every token issued before (unless more than one
--                          grant per microsecond was made on average since first use)
--              seq         arrival counter of queued entries
--              limit       the limit of every live entry of a kind other than mutex (a newcomer
--                          with another is refused); stale once none is left
--              holder      a mutex's holder: "owner token ttl value", valid while T names owner
--              h:<owner>   another kind's holder: "token ttl mode value"
--              w:<owner>   a queued entry: JSON {mode, limit, exp, ttl, want, wake, ask, value}
--   T    string            a mutex's holder, SET T owner PX ttl: the classic recipe's key. For
--                          a mutex it is the truth: a holder whose key is gone has lost the
--                          lock, and an owner baton's record does not name is a holder from
--                          outside, ahead of everyone until its PTTL runs out
--   T:h  sorted set        holders of other kinds, scored by expiry (ms, server clock)
--   T:q  sorted set        queued entries, scored by arrival (seq)
--
-- A script touches the holders and the head of the queue, never the whole queue: its cost
-- stays flat as the queue grows. Dead holders go when a script sees them; a dead queued entry
-- goes when it reaches the head (until then it only counts in `position`).
--
-- KEYS: T:s, T, T:h, T:q. The last two ARGV of every script: fenced ('1' keeps a fence and
-- issues tokens; '0' issues token '0' and lets every key expire with the resource's last
-- entry) and the kind.

local call, tonumber, match = redis.call, tonumber, string.match
local s, plain, hz, qz = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local is_mutex = ARGV[#ARGV] == 'mutex'
local fenced = ARGV[#ARGV - 1] == '1'

-- @fast: a verb's fast path goes here, before the functions below are made: making them
-- costs more on the server than a fast path's own commands.

-- The server's clock, read once and only when needed: the uncontended paths of a mutex never
-- ask for it (a TTL given to SET PX runs on it anyway).
local clock_ms, clock_us
local function now()
  if not clock_ms then
    local t = call('TIME')
    clock_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
    clock_ms = math.floor(clock_us / 1000)
  end
  return clock_ms
end

local function can_hold(mode, limit, n, exclusive_ahead)
  if n >= limit then return false end
  if mode == 'exclusive' then return n == 0 end
  return not exclusive_ahead
end

-- The holders: {n, exclusive (one holder that excludes the rest), owner, token, ttl, value,
-- foreign} (owner and the rest for a mutex only). Expired holders of other kinds go here.
local function holders()
  if is_mutex then
    local owner = call('GET', plain)
    if not owner then return {n = 0} end
    local h = {n = 1, exclusive = true, owner = owner, foreign = true, token = '0', value = ''}
    local record = call('HGET', s, 'holder')
    if record then
      local o, token, ttl, value = match(record, '^(%S+) (%S+) (%S+) (.*)$')
      if o == owner then h.foreign, h.token, h.ttl, h.value = false, token, tonumber(ttl), value end
    end
    return h
  end
  local dead = call('ZRANGEBYSCORE', hz, '-inf', now())
  if #dead > 0 then
    for _, o in ipairs(dead) do call('HDEL', s, 'h:' .. o) end
    call('ZREMRANGEBYSCORE', hz, '-inf', now())
  end
  local n = call('ZCARD', hz)
  local h = {n = n, exclusive = false}
  if n == 1 then
    local o = call('ZRANGE', hz, 0, 0)[1]
    local record = call('HGET', s, 'h:' .. o) or ''
    h.exclusive = match(record, '^%S+ %S+ (%S+)') == 'exclusive'
  end
  return h
end

-- Without a fence, every key of the resource lives at least `ms` more: until its latest
-- entry's expiry.
local function cover(ms)
  if fenced then return end
  for _, k in ipairs({s, hz, qz}) do
    local left = call('PTTL', k)
    if left == -1 or (left >= 0 and left < ms) then call('PEXPIRE', k, ms) end
  end
end

-- Without a fence, a resource with no entry left leaves no key.
local function tidy(h)
  if fenced or h.n > 0 or call('EXISTS', qz) == 1 then return end
  call('DEL', s, hz, qz)
end

local function next_token()
  if not fenced then return '0' end
  local fence = call('HINCRBY', s, 'fence', 1)
  if fence == 1 then
    now()
    fence = clock_us
    call('HSET', s, 'fence', string.format('%d', fence))
  end
  -- Tokens pass 10^15: kept as exact decimal strings.
  return string.format('%d', fence)
end

-- Makes `owner` a holder for `left` ms (its lease's TTL is `ttl`) and returns its new token.
local function hold(h, owner, mode, ttl, left, value)
  local token = next_token()
  if is_mutex then
    call('SET', plain, owner, 'PX', left)
    call('HSET', s, 'holder', owner .. ' ' .. token .. ' ' .. ttl .. ' ' .. value)
    h.owner, h.foreign, h.token, h.ttl, h.value = owner, false, token, ttl, value
  else
    call('ZADD', hz, now() + left, owner)
    call('HSET', s, 'h:' .. owner, token .. ' ' .. ttl .. ' ' .. mode .. ' ' .. value)
  end
  h.n = h.n + 1
  h.exclusive = mode == 'exclusive'
  cover(left)
  return token
end

local function unqueue(owner)
  call('ZREM', qz, owner)
  call('HDEL', s, 'w:' .. owner)
end

-- Grants queued entries from the head of the queue while they may hold, in arrival order.
-- The requester (if any) is granted with `ttl` from now and its token returned; any other
-- entry is granted by a hand-off, published on its wake channel as "owner token ttl ask"
-- (ask: the id of the request that last refreshed the entry, on which the TTL is based). A
-- hand-off's TTL runs from the waiter's last request and is at most its queue entry's TTL, so
-- a waiter that died while queued blocks the lock no longer than its queue entry would have;
-- the waiter extends it if it holds long enough. An entry with too little time left is only
-- woken ("owner", to ask again); an entry without a wake channel polls, and the queue waits
-- for it to ask.
-- Returns the requester's token or nil, and whether the queue is now empty.
local function advance(h, requester, ttl)
  while true do
    if h.exclusive then return nil, false end
    local head = call('ZRANGE', qz, 0, 0)[1]
    if not head then return nil, true end
    local raw = call('HGET', s, 'w:' .. head)
    local e = raw and cjson.decode(raw)
    if not e or e.exp <= now() then
      unqueue(head)
    else
      if not can_hold(e.mode, e.limit, h.n, h.exclusive) then return nil, false end
      if head == requester then
        unqueue(head)
        return hold(h, head, e.mode, ttl, ttl, e.value), call('EXISTS', qz) == 0
      end
      if e.wake == '' then return nil, false end
      local grant_ttl = math.min(tonumber(e.want) or 0, e.ttl)
      local left = e.exp - e.ttl + grant_ttl - now()
      if left < 2 then
        call('PUBLISH', e.wake, head)
        return nil, false
      end
      unqueue(head)
      local token = hold(h, head, e.mode, grant_ttl, left, e.value)
      call('PUBLISH', e.wake, head .. ' ' .. token .. ' ' .. grant_ttl .. ' ' .. (e.ask or ''))
    end
  end
end

-- Milliseconds until the soonest holder can expire, or -1 without holders.
local function soonest(h)
  if h.n == 0 then return -1 end
  if is_mutex then
    local left = call('PTTL', plain)
    if left < 0 then left = 1000 end
    return left
  end
  local first = call('ZRANGE', hz, 0, 0, 'WITHSCORES')
  return math.max(0, tonumber(first[2]) - now())
end

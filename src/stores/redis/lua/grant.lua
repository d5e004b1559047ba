-- grant: make ARGV owner a holder, or keep its place in the queue.
-- ARGV: owner, mode, limit, ttlMs, enqueue (0|1), queueTtlMs, value, wake channel ('' to
--       poll), ask (the request's id, echoed in a hand-off), fenced, kind.
-- Returns the token (a decimal string) when granted; {0, position, retryAfterMs (-1 if none)}
-- when not; {-1, limit in use} when a newcomer's limit is not that of the live entries (nothing
-- granted or queued). A bare string costs the client less to read than an array, on the hot path.
local owner, mode, limit, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local enqueue, queue_ttl, value, wake, ask = ARGV[5] == '1', tonumber(ARGV[6]), ARGV[7], ARGV[8], ARGV[9]

-- Fast path: a free mutex, nobody queued, a fence kept. The plain key is taken as the classic
-- recipe takes it, and given back at once if a queue turns out to exist.
if is_mutex and fenced and call('SET', plain, owner, 'NX', 'PX', ttl) then
  if call('EXISTS', qz) == 0 then
    local fence = call('HINCRBY', s, 'fence', 1)
    if fence == 1 then
      local t = call('TIME')
      fence = tonumber(t[1]) * 1000000 + tonumber(t[2])
      call('HSET', s, 'fence', string.format('%d', fence))
    end
    local token = string.format('%d', fence)
    call('HSET', s, 'holder', owner .. ' ' .. token .. ' ' .. ttl .. ' ' .. value)
    return token
  end
  call('DEL', plain)
end
-- @general

local h = holders()

-- Already a holder: granted by a hand-off this request crossed; the TTL asked for starts now.
if is_mutex then
  if h.n == 1 and not h.foreign and h.owner == owner then
    call('PEXPIRE', plain, ttl)
    if h.ttl ~= ttl then call('HSET', s, 'holder', owner .. ' ' .. h.token .. ' ' .. ttl .. ' ' .. h.value) end
    cover(ttl)
    return h.token
  end
elseif call('ZSCORE', hz, owner) then
  local token, _, held_mode, held_value = match(call('HGET', s, 'h:' .. owner) or '', '^(%S+) (%S+) (%S+) (.*)$')
  call('ZADD', hz, now() + ttl, owner)
  call('HSET', s, 'h:' .. owner, token .. ' ' .. ttl .. ' ' .. held_mode .. ' ' .. held_value)
  cover(ttl)
  return token
end

-- Queued: the entry is refreshed with this request, then the queue moves from its head.
local raw = call('ZSCORE', qz, owner) and call('HGET', s, 'w:' .. owner)
local mine = raw and cjson.decode(raw)
if mine and mine.exp <= now() then
  unqueue(owner)
  mine = nil
end
if mine then
  mine.exp, mine.ttl, mine.want, mine.wake, mine.ask, mine.value = now() + queue_ttl, queue_ttl, ttl, wake, ask, value
  call('HSET', s, 'w:' .. owner, cjson.encode(mine))
  cover(queue_ttl)
  local token = advance(h, owner, ttl)
  if token then return token end
  -- The entry may have been granted or dropped by now only if it was the head.
  local rank = call('ZRANK', qz, owner)
  if rank then return {0, h.n + rank, soonest(h)} end
  if not enqueue then return {0, h.n, soonest(h)} end
end

-- A newcomer holds only if nobody is queued: it never overtakes a live waiter.
local _, empty = advance(h, nil, 0)
-- Live entries (holders, or a live head of the queue) all have the limit kept in T:s; a newcomer
-- asking with another is refused. With none (or none kept yet), its limit becomes the
-- resource's. A mutex's limit is always 1: the store refuses any other before asking.
if not is_mutex then
  local in_use = tonumber(call('HGET', s, 'limit'))
  if in_use ~= limit then
    if in_use and (h.n > 0 or not empty) then return {-1, in_use} end
    call('HSET', s, 'limit', limit)
  end
end
if empty and can_hold(mode, limit, h.n, h.exclusive) then
  return hold(h, owner, mode, ttl, ttl, value)
end
local position = h.n + call('ZCARD', qz)
if enqueue then
  local seq = call('HINCRBY', s, 'seq', 1)
  call('ZADD', qz, seq, owner)
  call('HSET', s, 'w:' .. owner, cjson.encode({mode = mode, limit = limit, exp = now() + queue_ttl, ttl = queue_ttl, want = ttl, wake = wake, ask = ask, value = value}))
  cover(queue_ttl)
end
return {0, position, soonest(h)}

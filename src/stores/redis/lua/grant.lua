-- grant: make ARGV owner a holder, or keep its place in the queue.
-- ARGV: owner, mode, limit, ttlMs, enqueue (0|1), queueTtlMs, value, wake channel ('' to
--       poll), ask (the request's id, echoed in a hand-off), fenced, kind.
-- Returns {1, token} when granted; {0, position, retryAfterMs (-1 if none)} when not.
local owner, mode, limit, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local enqueue, queue_ttl, value, wake, ask = ARGV[5] == '1', tonumber(ARGV[6]), ARGV[7], ARGV[8], ARGV[9]
local h = holders()

-- Already a holder: granted by a hand-off this request crossed; the TTL asked for starts now.
if is_mutex then
  if h.n == 1 and not h.foreign and h.owner == owner then
    redis.call('PEXPIRE', plain, ttl)
    if h.ttl ~= ttl then redis.call('HSET', s, 'holder', owner .. ' ' .. h.token .. ' ' .. ttl .. ' ' .. h.value) end
    cover(ttl)
    return {1, h.token}
  end
elseif redis.call('ZSCORE', hz, owner) then
  local token, _, held_mode, held_value = string.match(redis.call('HGET', s, 'h:' .. owner) or '', '^(%S+) (%S+) (%S+) (.*)$')
  redis.call('ZADD', hz, now() + ttl, owner)
  redis.call('HSET', s, 'h:' .. owner, token .. ' ' .. ttl .. ' ' .. held_mode .. ' ' .. held_value)
  cover(ttl)
  return {1, token}
end

-- Queued: the entry is refreshed with this request, then the queue moves from its head.
local raw = redis.call('ZSCORE', qz, owner) and redis.call('HGET', s, 'w:' .. owner)
local mine = raw and cjson.decode(raw)
if mine and mine.exp <= now() then
  unqueue(owner)
  mine = nil
end
if mine then
  mine.exp, mine.ttl, mine.want, mine.wake, mine.ask, mine.value = now() + queue_ttl, queue_ttl, ttl, wake, ask, value
  redis.call('HSET', s, 'w:' .. owner, cjson.encode(mine))
  cover(queue_ttl)
  local token = advance(h, owner, ttl)
  if token then return {1, token} end
  -- The entry may have been granted or dropped by now only if it was the head.
  local rank = redis.call('ZRANK', qz, owner)
  if rank then return {0, h.n + rank, soonest(h)} end
  if not enqueue then return {0, h.n, soonest(h)} end
end

-- A newcomer holds only if nobody is queued: it never overtakes a live waiter.
local _, empty = advance(h, nil, 0)
if empty and can_hold(mode, limit, h.n, h.exclusive) then
  return {1, hold(h, owner, mode, ttl, ttl, value)}
end
local position = h.n + redis.call('ZCARD', qz)
if enqueue then
  local seq = redis.call('HINCRBY', s, 'seq', 1)
  redis.call('ZADD', qz, seq, owner)
  redis.call('HSET', s, 'w:' .. owner, cjson.encode({mode = mode, limit = limit, exp = now() + queue_ttl, ttl = queue_ttl, want = ttl, wake = wake, ask = ask, value = value}))
  cover(queue_ttl)
end
return {0, position, soonest(h)}

-- extend: reset the TTL of a holder.
-- ARGV: owner, ttlMs, fenced, kind.
-- Returns 1 if the owner held the resource and its TTL was reset, else 0.
local owner, ttl = ARGV[1], tonumber(ARGV[2])
if is_mutex then
  local h = holders()
  if h.n == 0 or h.foreign or h.owner ~= owner then return 0 end
  redis.call('PEXPIRE', plain, ttl)
  if h.ttl ~= ttl then redis.call('HSET', s, 'holder', owner .. ' ' .. h.token .. ' ' .. ttl .. ' ' .. h.value) end
  cover(ttl)
  return 1
end
local exp = redis.call('ZSCORE', hz, owner)
if not exp or tonumber(exp) <= now() then return 0 end
redis.call('ZADD', hz, now() + ttl, owner)
local record = redis.call('HGET', s, 'h:' .. owner) or ''
local token, held_ttl, rest = string.match(record, '^(%S+) (%S+) (.*)$')
if token and tonumber(held_ttl) ~= ttl then redis.call('HSET', s, 'h:' .. owner, token .. ' ' .. ttl .. ' ' .. rest) end
cover(ttl)
return 1

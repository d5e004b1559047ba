-- extend: reset the TTL of a holder.
-- ARGV: owner, ttlMs, fenced, kind.
-- Returns 1 if the owner held the resource and its TTL was reset, else 0.
local owner, ttl = ARGV[1], tonumber(ARGV[2])

-- Fast path: a mutex on a store that keeps a fence (nothing else to keep alive).
if is_mutex and fenced then
  if call('GET', plain) ~= owner then return 0 end
  local o, token, held_ttl, value = match(call('HGET', s, 'holder') or '', '^(%S+) (%S+) (%S+) (.*)$')
  if o ~= owner then return 0 end
  call('PEXPIRE', plain, ttl)
  if tonumber(held_ttl) ~= ttl then call('HSET', s, 'holder', owner .. ' ' .. token .. ' ' .. ttl .. ' ' .. value) end
  return 1
end
-- @general

if is_mutex then
  local h = holders()
  if h.n == 0 or h.foreign or h.owner ~= owner then return 0 end
  call('PEXPIRE', plain, ttl)
  if h.ttl ~= ttl then call('HSET', s, 'holder', owner .. ' ' .. h.token .. ' ' .. ttl .. ' ' .. h.value) end
  cover(ttl)
  return 1
end
local exp = call('ZSCORE', hz, owner)
if not exp or tonumber(exp) <= now() then return 0 end
call('ZADD', hz, now() + ttl, owner)
local record = call('HGET', s, 'h:' .. owner) or ''
local token, held_ttl, rest = match(record, '^(%S+) (%S+) (.*)$')
if token and tonumber(held_ttl) ~= ttl then call('HSET', s, 'h:' .. owner, token .. ' ' .. ttl .. ' ' .. rest) end
cover(ttl)
return 1

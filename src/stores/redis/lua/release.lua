-- release: remove the owner's entry, holding or queued, and grant whoever may now hold.
-- ARGV: owner, fenced, kind.
-- Returns 1 if the owner had a live entry, else 0.
local owner = ARGV[1]
local found, freed = 0, false
if is_mutex then
  if redis.call('GET', plain) == owner then
    redis.call('DEL', plain)
    found, freed = 1, true
  end
else
  local exp = redis.call('ZSCORE', hz, owner)
  if exp then
    redis.call('ZREM', hz, owner)
    redis.call('HDEL', s, 'h:' .. owner)
    if tonumber(exp) > now() then found = 1 end
  end
end
if found == 0 then
  local raw = redis.call('ZSCORE', qz, owner) and redis.call('HGET', s, 'w:' .. owner)
  if raw then
    unqueue(owner)
    if cjson.decode(raw).exp > now() then found = 1 end
  end
end
if found == 0 then return 0 end
local h = freed and {n = 0} or holders()
advance(h, nil, 0)
tidy(h)
return 1

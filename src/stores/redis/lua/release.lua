-- release: remove the owner's entry, holding or queued, and grant whoever may now hold.
-- ARGV: owner, fenced, kind.
-- Returns 1 if the owner had a live entry, else 0.
local owner = ARGV[1]

-- Fast path: a mutex's holder leaves and nobody is queued.
local freed = false
if is_mutex and call('GET', plain) == owner then
  call('DEL', plain)
  if fenced and call('EXISTS', qz) == 0 then return 1 end
  freed = true
end
-- @general

local found = freed and 1 or 0
if not is_mutex then
  local exp = call('ZSCORE', hz, owner)
  if exp then
    call('ZREM', hz, owner)
    call('HDEL', s, 'h:' .. owner)
    if tonumber(exp) > now() then found = 1 end
  end
end
if found == 0 then
  local raw = call('ZSCORE', qz, owner) and call('HGET', s, 'w:' .. owner)
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

-- force-release: remove every holder (baton's or, for a mutex, one from outside) and grant
-- whoever may now hold. The fence is kept.
-- ARGV: fenced, kind.
-- Returns how many holders were removed.
local h = holders()
local removed = h.n
if is_mutex then
  if removed > 0 then call('DEL', plain) end
else
  for _, o in ipairs(call('ZRANGE', hz, 0, -1)) do call('HDEL', s, 'h:' .. o) end
  call('DEL', hz)
end
if removed > 0 then
  h = {n = 0, exclusive = false}
  advance(h, nil, 0)
  tidy(h)
end
return removed

-- prune: remove the keys of a resource that nobody holds or waits for, so that names used
-- once do not stay in Redis for ever. A fenced resource goes only while its fence is behind
-- the server's clock in microseconds: the fence of a name used again starts at that clock
-- (see next_token), above every token the name issued before.
-- ARGV: fenced, kind.
-- Returns 1 when the resource was removed, 0 when it stays.
local h = holders()
if h.n > 0 then return 0 end
for _, o in ipairs(call('ZRANGE', qz, 0, -1)) do
  local raw = call('HGET', s, 'w:' .. o)
  local e = raw and cjson.decode(raw)
  if e and e.exp > now() then return 0 end
end
if fenced then
  now()
  local fence = tonumber(call('HGET', s, 'fence') or '0')
  if fence >= clock_us then return 0 end
end
call('DEL', s, plain, hz, qz)
return 1

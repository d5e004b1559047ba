-- inspect: report the resource without changing it.
-- ARGV: fenced, kind.
-- Returns JSON {fence, entries: [{owner, mode, held, token, ttl, left, value, foreign}]}: holders
-- (foreign = 1 for a mutex's key that another program set, whose value is then the owner),
-- then live queued entries in arrival order ({fence, entries = {}, empty = true} if none).
local out = {}
if is_mutex then
  local owner = call('GET', plain)
  if owner then
    local left = call('PTTL', plain)
    local record = call('HGET', s, 'holder') or ''
    local o, token, ttl, value = match(record, '^(%S+) (%S+) (%S+) (.*)$')
    local foreign = 0
    if o ~= owner then token, ttl, value, foreign = '0', left, '', 1 end
    if left < 0 then left = 1000 end
    table.insert(out, {owner = owner, mode = 'exclusive', held = 1, token = token, ttl = tonumber(ttl), left = left, value = value, foreign = foreign})
  end
else
  local list = call('ZRANGEBYSCORE', hz, '(' .. now(), '+inf', 'WITHSCORES')
  for i = 1, #list, 2 do
    local record = call('HGET', s, 'h:' .. list[i]) or ''
    local token, ttl, mode, value = match(record, '^(%S+) (%S+) (%S+) (.*)$')
    if token then
      table.insert(out, {owner = list[i], mode = mode, held = 1, token = token, ttl = tonumber(ttl), left = tonumber(list[i + 1]) - now(), value = value})
    end
  end
end
for _, o in ipairs(call('ZRANGE', qz, 0, -1)) do
  local raw = call('HGET', s, 'w:' .. o)
  if raw then
    local e = cjson.decode(raw)
    if e.exp > now() then
      table.insert(out, {owner = o, mode = e.mode, held = 0, token = '0', ttl = e.ttl, left = e.exp - now(), value = e.value})
    end
  end
end
local fence = call('HGET', s, 'fence') or '0'
if #out == 0 then return cjson.encode({fence = fence, entries = {}, empty = true}) end
return cjson.encode({fence = fence, entries = out})

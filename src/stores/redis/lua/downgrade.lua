-- downgrade: turn the owner's holding entry into a shared one where it stands (same token,
-- TTL and place), and grant the queued entries that may hold alongside it, as a release does.
-- ARGV: owner, fenced, kind.
-- Returns 1 if the owner holds the resource (a shared entry is left as it is), else 0. A
-- mutex has no shared entries: 0.
local owner = ARGV[1]
-- @general

if is_mutex then return 0 end
local exp = call('ZSCORE', hz, owner)
if not exp or tonumber(exp) <= now() then return 0 end
local record = call('HGET', s, 'h:' .. owner) or ''
local token, ttl, mode, value = match(record, '^(%S+) (%S+) (%S+) (.*)$')
if not token then return 0 end
if mode == 'shared' then return 1 end
call('HSET', s, 'h:' .. owner, token .. ' ' .. ttl .. ' shared ' .. value)
advance(holders(), nil, 0)
return 1

-- mark: advance the resource's mark (a scheduled job's last claimed slot) to ARGV to when it
-- stands below it (or there is none), or with renote rewrite the note of a mark at to.
-- KEYS: T:m (a hash: at, note; no TTL, left by prune and every other script) in place of T:s.
-- ARGV: to (an integer, -1 reads), note, has note (0|1), renote (0|1), fenced, kind.
-- Returns {at ('-1' without a mark), note ('' without one), has note (0|1), advanced (0|1)}.
local to, note, has_note, renote = tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1', ARGV[4] == '1'
local at_text = call('HGET', s, 'at') or '-1'
local at = tonumber(at_text)
local function put()
  call('HSET', s, 'at', ARGV[1])
  if has_note then call('HSET', s, 'note', note) else call('HDEL', s, 'note') end
end
if to > at then
  put()
  return {ARGV[1], note, has_note and 1 or 0, 1}
end
if renote and to == at and to >= 0 then
  put()
  return {at_text, note, has_note and 1 or 0, 0}
end
local kept = call('HGET', s, 'note')
return {at_text, kept or '', kept and 1 or 0, 0}

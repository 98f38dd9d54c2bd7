"""The Lua scripts behind ``state.redis.RedisState``'s saved-files index (each runs atomically in
Redis): every write changes all of the index's structures together, and a listing (page and
total) is one script. Every script takes the key prefix as ARGV[1]; the keys are described in
``state.redis``.
"""

from __future__ import annotations

# forget(p, id): drop entry ``id`` from every structure; shared by the scripts below.
_FORGET = """
local function forget(p, id)
  local f = p .. 'file:' .. id
  local fields = redis.call('HMGET', f, 'key', 'owner_id', 'file_unique_id')
  if not fields[1] then return 0 end
  local member = string.rep('0', 20 - #id) .. id
  redis.call('DEL', f)
  if fields[3] then redis.call('SREM', p .. 'files-by-unique-id:' .. fields[3], id) end
  redis.call('HDEL', p .. 'file-ids', fields[1])
  redis.call('ZREM', p .. 'files', member)
  redis.call('ZREM', p .. 'files-of:' .. fields[2], member)
  return 1
end
"""
# ARGV: prefix, key, owner_id, chat_id, size, saved_at → the entry's id (kept if the key had one).
RECORD_LUA = """
local p, key, owner, saved_at = ARGV[1], ARGV[2], ARGV[3], ARGV[6]
local id = redis.call('HGET', p .. 'file-ids', key)
if id then
  local old_owner = redis.call('HGET', p .. 'file:' .. id, 'owner_id')
  if old_owner and old_owner ~= owner then
    redis.call('ZREM', p .. 'files-of:' .. old_owner, string.rep('0', 20 - #id) .. id)
    local note = redis.call('HGET', p .. 'file:' .. id, 'file_unique_id')
    if note and old_owner:match('^(.+):') ~= owner:match('^(.+):') then  -- a note is its platform's
      redis.call('HDEL', p .. 'file:' .. id, 'file_unique_id')
      redis.call('SREM', p .. 'files-by-unique-id:' .. note, id)
    end
  end
else
  id = tostring(redis.call('INCR', p .. 'file-seq'))
  redis.call('HSET', p .. 'file-ids', key, id)
end
local member = string.rep('0', 20 - #id) .. id
redis.call('HSET', p .. 'file:' .. id, 'key', key, 'owner_id', owner, 'chat_id', ARGV[4],
  'size', ARGV[5], 'saved_at', saved_at)
redis.call('ZADD', p .. 'files', saved_at, member)
redis.call('ZADD', p .. 'files-of:' .. owner, saved_at, member)
return id
"""
# ARGV: prefix, id, new key. Unknown ids change nothing; another entry of the new key is dropped.
RENAME_LUA = (
    _FORGET
    + """
local p, id, new_key = ARGV[1], ARGV[2], ARGV[3]
local f = p .. 'file:' .. id
local old_key = redis.call('HGET', f, 'key')
if not old_key or old_key == new_key then return 0 end
local other = redis.call('HGET', p .. 'file-ids', new_key)
if other then forget(p, other) end
redis.call('HDEL', p .. 'file-ids', old_key)
redis.call('HSET', p .. 'file-ids', new_key, id)
redis.call('HSET', f, 'key', new_key)
return 1
"""
)
FORGET_LUA = _FORGET + "\nreturn forget(ARGV[1], ARGV[2])\n"
# ARGV: prefix, owner id or '', direction ('' | 'before' | 'after'), cursor score, cursor member,
# limit → {total, more (0/1), {id, key, owner, chat, size, saved_at}...}, in the order paged
# (newest first, or for 'after' oldest first). A cursor is (score, member): the members of the
# cursor's own score come first, filtered on the member (ties are rare: a tie group is read
# whole), then a score range from the cursor on, LIMITed: O(log n + page) per page.
LIST_LUA = """
local p, owner, dir, score, cursor = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local limit = tonumber(ARGV[6])
local index = owner == '' and (p .. 'files') or (p .. 'files-of:' .. owner)
local want = limit + 1
local members = {}
local function take(list, keep)
  for _, m in ipairs(list) do
    if #members < want and (keep == nil or keep(m)) then members[#members + 1] = m end
  end
end
if dir == '' then
  take(redis.call('ZREVRANGE', index, 0, want - 1))
elseif dir == 'before' then
  take(redis.call('ZREVRANGEBYSCORE', index, score, score), function(m) return m < cursor end)
  if #members < want then
    take(redis.call('ZREVRANGEBYSCORE', index, '(' .. score, '-inf', 'LIMIT', 0, want - #members))
  end
else
  take(redis.call('ZRANGEBYSCORE', index, score, score), function(m) return m > cursor end)
  if #members < want then
    take(redis.call('ZRANGEBYSCORE', index, '(' .. score, '+inf', 'LIMIT', 0, want - #members))
  end
end
local out = {redis.call('ZCARD', index), #members > limit and 1 or 0}
for i = 1, math.min(#members, limit) do
  local id = members[i]:match('^0*(%d+)$')
  local row = redis.call('HMGET', p .. 'file:' .. id, 'key', 'owner_id', 'chat_id', 'size', 'saved_at')
  table.insert(row, 1, id)
  out[#out + 1] = row
end
return out
"""

"""Which platform file each index entry's object holds (``file_unique_id``), in Redis.

A mixin of ``RedisState``. Keys, under its prefix:

- the ``file_unique_id`` field of ``file:{id}`` (absent: not noted; ``record_file`` keeps it);
- ``files-by-unique-id:{file_unique_id}``: SET of the ids noted as holding that file.

Each write is one Lua script, so the field and the set change together; ``forget`` (in
``state.redis``) takes the id out of its set. A set may still hold the id of an entry that a
rename dropped; the lookup skips and removes such ids as it meets them.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tgs3bot.interfaces import SavedFile
from tgs3bot.redis_client import text

# ARGV: prefix, id, file_unique_id ('' for none). Unknown ids change nothing.
SET_UNIQUE_ID_LUA = """
local p, id, uid = ARGV[1], ARGV[2], ARGV[3]
local f = p .. 'file:' .. id
if redis.call('EXISTS', f) == 0 then return 0 end
local old = redis.call('HGET', f, 'file_unique_id')
if old then redis.call('SREM', p .. 'files-by-unique-id:' .. old, id) end
if uid == '' then
  redis.call('HDEL', f, 'file_unique_id')
else
  redis.call('HSET', f, 'file_unique_id', uid)
  redis.call('SADD', p .. 'files-by-unique-id:' .. uid, id)
end
return 1
"""
# ARGV: prefix, file_unique_id → {id, key, owner_id, chat_id, size, saved_at}... in no order;
# ids whose entry is gone or notes another file are removed from the set on the way.
FIND_BY_UNIQUE_ID_LUA = """
local p, uid = ARGV[1], ARGV[2]
local set = p .. 'files-by-unique-id:' .. uid
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', set)) do
  local row = redis.call('HMGET', p .. 'file:' .. id,
    'key', 'owner_id', 'chat_id', 'size', 'saved_at', 'file_unique_id')
  if row[6] == uid then
    out[#out + 1] = {id, row[1], row[2], row[3], row[4], row[5]}
  else
    redis.call('SREM', set, id)
  end
end
return out
"""


class UniqueIdNotes:
    """``StateStore.set_file_unique_id`` and ``find_files_by_unique_id`` for ``RedisState``."""

    prefix: str

    @property
    def client(self) -> aioredis.Redis:
        raise NotImplementedError  # RedisState's

    async def set_file_unique_id(self, file_id: int, file_unique_id: str | None) -> None:
        """Note which platform file the entry's object holds (None: not known); unknown ids are ignored."""
        script = self.client.register_script(SET_UNIQUE_ID_LUA)
        await script(args=[self.prefix, file_id, file_unique_id or ""])

    async def find_files_by_unique_id(self, file_unique_id: str, *, limit: int) -> list[SavedFile]:
        """At most ``limit`` entries noted as holding that platform file, anyone's, newest first."""
        script = self.client.register_script(FIND_BY_UNIQUE_ID_LUA)
        rows: list[list[Any]] = await script(args=[self.prefix, file_unique_id])
        entries = [
            SavedFile(int(i), text(key), int(owner), int(chat), int(size), float(at))
            for i, key, owner, chat, size, at in rows
        ]
        return sorted(entries, key=lambda e: (e.saved_at, e.id), reverse=True)[: max(limit, 0)]

"""Which platform file each index entry's object holds (``file_unique_id``), in Redis.

A mixin of ``RedisState``. A note is its platform's (a Telegram file_unique_id, a VK doc's
``owner_id_id``), so it is written as ``redis_client.scoped`` writes ids: Telegram's bare,
another platform's as ``vk:…``. Keys, under the prefix:

- the ``file_unique_id`` field of ``file:{id}``: the note (absent: not noted; ``record_file``
  keeps it when the same platform saves the key again, and drops it for another platform);
- ``files-by-unique-id:{note}``: SET of the ids noted as holding that file.

Each write is one Lua script, so the field and the set change together; ``forget`` (in
``state.redis``) takes the id out of its set. A set may still hold the id of an entry that a
rename dropped; the lookup skips and removes such ids as it meets them.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tgs3bot.interfaces import SavedFile
from tgs3bot.redis_client import TELEGRAM, text, unscoped

# ARGV: prefix, id, the platform as an owner's name shows it ('' for Telegram), note ('' for none).
# Unknown ids, and another platform's entries, change nothing.
SET_UNIQUE_ID_LUA = """
local p, id, platform, note = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local f = p .. 'file:' .. id
local owner = redis.call('HGET', f, 'owner_id')
if not owner or (owner:match('^(.+):') or '') ~= platform then return 0 end
local old = redis.call('HGET', f, 'file_unique_id')
if old then redis.call('SREM', p .. 'files-by-unique-id:' .. old, id) end
if note == '' then
  redis.call('HDEL', f, 'file_unique_id')
else
  redis.call('HSET', f, 'file_unique_id', note)
  redis.call('SADD', p .. 'files-by-unique-id:' .. note, id)
end
return 1
"""
# ARGV: prefix, note → {id, key, owner_id, chat_id, size, saved_at}... in no order;
# ids whose entry is gone or notes another file are removed from the set on the way.
FIND_BY_UNIQUE_ID_LUA = """
local p, note = ARGV[1], ARGV[2]
local set = p .. 'files-by-unique-id:' .. note
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', set)) do
  local row = redis.call('HMGET', p .. 'file:' .. id,
    'key', 'owner_id', 'chat_id', 'size', 'saved_at', 'file_unique_id')
  if row[6] == note then
    out[#out + 1] = {id, row[1], row[2], row[3], row[4], row[5]}
  else
    redis.call('SREM', set, id)
  end
end
return out
"""


def note_name(platform: str, file_unique_id: str) -> str:
    """The note as Redis keeps it: Telegram's bare, another platform's as ``vk:…``."""
    return file_unique_id if platform == TELEGRAM else f"{platform}:{file_unique_id}"


class UniqueIdNotes:
    """``StateStore.set_file_unique_id`` and ``find_files_by_unique_id`` for ``RedisState``."""

    prefix: str

    @property
    def client(self) -> aioredis.Redis:
        raise NotImplementedError  # RedisState's

    async def set_file_unique_id(self, platform: str, file_id: int, file_unique_id: str | None) -> None:
        """Note which of the platform's files the entry's object holds (None: not known).

        Ids unknown, or of another platform's entry, are ignored.
        """
        script = self.client.register_script(SET_UNIQUE_ID_LUA)
        note = "" if file_unique_id is None else note_name(platform, file_unique_id)
        await script(args=[self.prefix, file_id, "" if platform == TELEGRAM else platform, note])

    async def find_files_by_unique_id(
        self, platform: str, file_unique_id: str, *, limit: int
    ) -> list[SavedFile]:
        """At most ``limit`` of the platform's entries noted as holding that file, anyone's, newest first."""
        script = self.client.register_script(FIND_BY_UNIQUE_ID_LUA)
        rows: list[list[Any]] = await script(args=[self.prefix, note_name(platform, file_unique_id)])
        entries = [saved_file(row) for row in rows]
        entries = [e for e in entries if e.platform == platform]  # record_file drops another's note
        return sorted(entries, key=lambda e: (e.saved_at, e.id), reverse=True)[: max(limit, 0)]


def saved_file(row: list[Any]) -> SavedFile:
    """The entry of a row the scripts return: id, key, owner (scoped), chat id, size, saved_at."""
    file_id, key, owner, chat_id, size, saved_at = row
    platform, owner_id = unscoped(text(owner))
    return SavedFile(int(file_id), text(key), owner_id, int(chat_id), int(size), float(saved_at), platform)

"""The bot's state in Redis (``interfaces.StateStore``), shared by every process of one bot (SPEC §5).

Keys, all under the prefix (``tgs3bot:`` by default):

Chat, user and update ids appear as ``redis_client.scoped`` writes them: Telegram's bare (as
before VK), another platform's as ``vk:123`` (SPEC §6).

- ``greeted``: SET of chats that have had the greeting. A chat once greeted stays greeted, so
  each process remembers the greeted chats it has seen (``GREETED_CACHE_SIZE`` at most), and asks
  Redis only about the others: a remembered True cannot go stale; False is never remembered.
- ``dialogs``: HASH chat → the open dialog as JSON.
- ``cursor:{platform}``: where the platform's poller stopped reading (VK's long-poll ``ts``).
- ``handled:{update_id}``: a flag per handled update, expiring after ``HANDLED_RETENTION_S``
  (Redis forgets it; nothing has to prune).
- ``file:{id}``: HASH of one index entry (key, owner_id (scoped), chat_id, size, saved_at).
- ``file-ids``: HASH object key → id (one entry per key); ``file-seq``: the last id given (INCR,
  never reused, so a stale button cannot reach another file).
- ``files`` and ``files-of:{owner}``: sorted sets for "newest first" paging, everyone's and one
  owner's. Score = saved_at; member = the id zero-padded to 20 digits, so equal scores list by
  id descending under ZREVRANGE, as the SQLite indexes (saved_at DESC, id DESC) do, and a
  ``(saved_at, id)`` cursor is a (score, member) position.

- ``files-by-unique-id:{note}`` and a field of ``file:{id}``: which of its platform's files each
  entry's object holds, the note named as ``scoped`` names ids (``state.redis_unique_ids``).

Each write of the index is one Lua script, so every structure changes together or not at all,
and a listing (page and total) is one script too. The scripts build key names from the prefix,
so this is for a single Redis server (with replicas or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

from typing import Any, Self

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from tgs3bot.events import ChatKey, UserKey
from tgs3bot.interfaces import Dialog, SavedFile
from tgs3bot.redis_client import open_client, scoped, text
from tgs3bot.state.paging import page_cursor
from tgs3bot.state.redis_unique_ids import UniqueIdNotes, saved_file
from tgs3bot.state.sqlite_schema import HANDLED_RETENTION_S

GREETED_CACHE_SIZE = 100_000  # chats remembered as greeted per process; cleared when full

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


class RedisState(UniqueIdNotes):
    """State in Redis: ``async with RedisState(url) as state: ...``; see the module for the keys."""

    def __init__(self, url: str, *, prefix: str = "tgs3bot:") -> None:
        self.url = url
        self.prefix = prefix
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._greeted: set[ChatKey] = set()  # chats known to be greeted (never un-greeted)

    @property
    def client(self) -> aioredis.Redis:
        """The open client (RuntimeError outside ``async with``)."""
        if self._client is None:
            raise RuntimeError("RedisState is used outside `async with`")
        return self._client

    async def __aenter__(self) -> Self:
        """Connect, and check that the server answers and is new enough."""
        self._client = client = await open_client(self.url)
        self._scripts = {
            "record": client.register_script(RECORD_LUA),
            "rename": client.register_script(RENAME_LUA),
            "forget": client.register_script(FORGET_LUA),
            "list": client.register_script(LIST_LUA),
        }
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run(self, script: str, *args: str | int | float) -> Any:
        """Run one of the Lua scripts above with the prefix and ``args`` as ARGV."""
        client = self.client  # first: the clear error outside `async with`
        return await self._scripts[script](args=[self.prefix, *args], client=client)

    async def is_greeted(self, platform: str, chat_id: int) -> bool:
        """Whether the chat has been greeted already (a chat seen greeted here needs no round trip)."""
        if (platform, chat_id) in self._greeted:
            return True
        greeted = bool(await self.client.sismember(self.prefix + "greeted", scoped(platform, chat_id)))
        if greeted:
            self._remember_greeted((platform, chat_id))
        return greeted

    async def mark_greeted(self, platform: str, chat_id: int) -> None:
        """Remember that the chat has been greeted."""
        await self.client.sadd(self.prefix + "greeted", scoped(platform, chat_id))
        self._remember_greeted((platform, chat_id))

    def _remember_greeted(self, chat: ChatKey) -> None:
        if len(self._greeted) >= GREETED_CACHE_SIZE:
            self._greeted.clear()  # bounded memory; the chats seen again are asked for again
        self._greeted.add(chat)

    async def is_handled(self, platform: str, update_id: int) -> bool:
        """Whether the update was handled in the last ``HANDLED_RETENTION_S``."""
        return bool(await self.client.exists(f"{self.prefix}handled:{scoped(platform, update_id)}"))

    async def mark_handled(self, platform: str, update_id: int) -> None:
        """Remember that the update was handled (the flag expires after ``HANDLED_RETENTION_S``)."""
        key = f"{self.prefix}handled:{scoped(platform, update_id)}"
        await self.client.set(key, "1", ex=HANDLED_RETENTION_S)

    async def get_dialog(self, platform: str, chat_id: int) -> Dialog | None:
        """The chat's open dialog, if any."""
        raw = await self.client.hget(self.prefix + "dialogs", scoped(platform, chat_id))
        if raw is None:
            return None
        fields = orjson.loads(raw)
        return Dialog(str(fields["kind"]), int(fields["file_id"]), float(fields["started_at"]))

    async def set_dialog(self, platform: str, chat_id: int, dialog: Dialog | None) -> None:
        """Open (or replace) the chat's dialog; None closes it."""
        if dialog is None:
            await self.client.hdel(self.prefix + "dialogs", scoped(platform, chat_id))
        else:
            await self.client.hset(self.prefix + "dialogs", scoped(platform, chat_id), orjson.dumps(dialog))

    async def record_file(
        self, key: str, *, platform: str, owner_id: int, chat_id: int, size: int, saved_at: float
    ) -> SavedFile:
        """Index a saved object; saving the same key again updates its entry and keeps its id."""
        owner = scoped(platform, owner_id)  # the entry's owner_id field, and its files-of index
        file_id = await self._run("record", key, owner, chat_id, size, repr(saved_at))
        return SavedFile(int(file_id), key, owner_id, chat_id, size, saved_at, platform)

    async def get_file(self, file_id: int) -> SavedFile | None:
        """The index entry with that id, if any."""
        fields = ("key", "owner_id", "chat_id", "size", "saved_at")
        row = await self.client.hmget(f"{self.prefix}file:{file_id}", fields)
        return None if row[0] is None else saved_file([file_id, *row])

    async def rename_file(self, file_id: int, new_key: str) -> None:
        """Move the entry to ``new_key``, dropping any other entry of that key; unknown ids are ignored."""
        await self._run("rename", file_id, new_key)

    async def forget_file(self, file_id: int) -> None:
        """Drop the entry, if there is one."""
        await self._run("forget", file_id)

    async def list_files(
        self,
        owner: UserKey | None,
        *,
        limit: int,
        before: tuple[float, int] | None = None,
        after: tuple[float, int] | None = None,
    ) -> tuple[list[SavedFile], bool, int]:
        """A page of entries, newest first, by cursor (see ``interfaces.StateStore.list_files``)."""
        page = page_cursor(before, after)
        direction, (saved_at, file_id) = page if page else ("", (0.0, 0))
        # repr() round-trips a float exactly, and Redis reads it back as the same double.
        score, member = (repr(float(saved_at)), f"{file_id:020d}") if page else ("", "")
        whose = "" if owner is None else scoped(*owner)
        args = (whose, direction, score, member, max(limit, 0))
        total, more, *rows = await self._run("list", *args)
        files = [saved_file(row) for row in rows if row[1] is not None]
        return (files[::-1] if after is not None else files), bool(more), int(total)

    async def get_cursor(self, platform: str) -> str | None:
        """Where the platform's poller stopped reading, if it was saved."""
        value = await self.client.get(f"{self.prefix}cursor:{platform}")
        return None if value is None else text(value)

    async def set_cursor(self, platform: str, value: str) -> None:
        """Save the platform's read position."""
        await self.client.set(f"{self.prefix}cursor:{platform}", value)

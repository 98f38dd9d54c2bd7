"""The bot's state in Redis (``interfaces.StateStore``), shared by every process of one bot (SPEC §5).

Keys, all under the prefix (``tgs3bot:`` by default):

Chat, user and update ids appear as ``redis_client.scoped`` writes them: Telegram's bare (as
before VK), another platform's as ``vk:123`` (SPEC §6).

- ``greeted``: SET of chats that have had the greeting. A chat once greeted stays greeted, so
  each process remembers the greeted chats it has seen (``GREETED_CACHE_SIZE`` at most), and asks
  Redis only about the others: a remembered True cannot go stale; False is never remembered.
- ``dialogs``: HASH chat → the open dialog as JSON.
- ``cursor:{platform}``: where the platform's poller stopped reading (VK's long-poll ``ts``).
- ``handled:{update}``: a flag per handled update, expiring after ``HANDLED_RETENTION_S``
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

With the Redis queue, the queue's scripts read and write some of these keys too (``held``): the
handled mark of an event held here is written by its ``done``, and the greeting and dialog of a
chat whose turn ``done`` took come with the turn (``ChatState``), so a steady worker's text
update makes no round trip for them. The key helpers below name them for both.

Each write of the index is one Lua script, so every structure changes together or not at all,
and a listing (page and total) is one script too. The scripts build key names from the prefix,
so this is for a single Redis server (with replicas or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Self

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from tgs3bot.events import ChatKey, UserKey
from tgs3bot.interfaces import Dialog, SavedFile
from tgs3bot.redis_client import open_client, scoped, text
from tgs3bot.state.paging import page_cursor
from tgs3bot.state.redis_scripts import FORGET_LUA, LIST_LUA, RECORD_LUA, RENAME_LUA
from tgs3bot.state.redis_unique_ids import UniqueIdNotes, saved_file
from tgs3bot.state.sqlite_schema import HANDLED_RETENTION_S

GREETED_CACHE_SIZE = 100_000  # chats remembered as greeted per process; cleared when full


def handled_prefix(prefix: str) -> str:
    """What the key of every handled mark starts with; the ``scoped`` update id follows."""
    return prefix + "handled:"


def handled_key(prefix: str, platform: str, update_id: int) -> str:
    """The key of an update's handled mark (the queue's scripts write and read it too)."""
    return handled_prefix(prefix) + scoped(platform, update_id)


def greeted_key(prefix: str) -> str:
    """The set of greeted chats (members: ``chat_member``)."""
    return prefix + "greeted"


def dialogs_key(prefix: str) -> str:
    """The hash of open dialogs (fields: ``chat_member``)."""
    return prefix + "dialogs"


def chat_member(platform: str, chat_id: int) -> str:
    """A chat in ``greeted`` and ``dialogs``: the same string as the ``chat`` of the queue's turns
    (``redis_client.scoped``), which its ``done`` script uses to read them (``queues.redis_scripts``)."""
    return scoped(platform, chat_id)


@dataclass(frozen=True, slots=True)
class ChatState:
    """A chat's greeting and dialog, read when this process took the chat's turn; they hold until
    the turn is done, as only the holder of a chat's turn changes them (``queues.redis_turns``)."""

    greeted: bool
    dialog: str | None  # the open dialog's JSON


class HeldUpdates(Protocol):
    """What the Redis queue knows of the updates this process holds (``queues.redis_turns.Turns``)."""

    def chat_state(self, platform: str, chat_id: int) -> ChatState | None:
        """The chat's state as read with its held turn, if it was."""
        ...

    def note_dialog(self, platform: str, chat_id: int, dialog: str | None) -> None:
        """The held chat's dialog was changed to this (so a later read in the same turn sees it)."""
        ...

    def first_delivery(self, platform: str, update_id: int) -> bool:
        """The update is held from a turn whose head was never handed out: nobody handled it."""
        ...

    def carry_mark(self, platform: str, update_id: int) -> bool:
        """The queue takes the update's handled mark, to write it with the event's ``done``."""
        ...


class RedisState(UniqueIdNotes):
    """State in Redis: ``async with RedisState(url) as state: ...``; see the module for the keys."""

    def __init__(self, url: str, *, prefix: str = "tgs3bot:") -> None:
        self.url = url
        self.prefix = prefix
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._greeted: set[ChatKey] = set()  # chats known to be greeted (never un-greeted)
        # The queue's turns (``backends`` sets it): handled-id lookups and marks it saves a round trip.
        self.held: HeldUpdates | None = None

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
        """Whether the chat has been greeted already (no round trip for a chat seen greeted here,
        or one whose state came with its held turn)."""
        if (platform, chat_id) in self._greeted:
            return True
        known = self.held.chat_state(platform, chat_id) if self.held is not None else None
        if known is not None:
            greeted = known.greeted
        else:
            member = chat_member(platform, chat_id)
            greeted = bool(await self.client.sismember(greeted_key(self.prefix), member))
        if greeted:
            self._remember_greeted((platform, chat_id))
        return greeted

    async def mark_greeted(self, platform: str, chat_id: int) -> None:
        """Remember that the chat has been greeted."""
        await self.client.sadd(greeted_key(self.prefix), chat_member(platform, chat_id))
        self._remember_greeted((platform, chat_id))

    def _remember_greeted(self, chat: ChatKey) -> None:
        if len(self._greeted) >= GREETED_CACHE_SIZE:
            self._greeted.clear()  # bounded memory; the chats seen again are asked for again
        self._greeted.add(chat)

    async def is_handled(self, platform: str, update_id: int) -> bool:
        """Whether the update was handled in the last ``HANDLED_RETENTION_S`` (no round trip for a
        first delivery: see ``queues.redis``)."""
        if self.held is not None and self.held.first_delivery(platform, update_id):
            return False
        return bool(await self.client.exists(handled_key(self.prefix, platform, update_id)))

    async def mark_handled(self, platform: str, update_id: int) -> None:
        """Remember that the update was handled (the flag expires after ``HANDLED_RETENTION_S``);
        for an update the queue holds here, its ``done`` writes the flag in the same round trip."""
        if self.held is not None and self.held.carry_mark(platform, update_id):
            return
        await self.client.set(handled_key(self.prefix, platform, update_id), "1", ex=HANDLED_RETENTION_S)

    async def get_dialog(self, platform: str, chat_id: int) -> Dialog | None:
        """The chat's open dialog, if any (no round trip if it came with the chat's held turn)."""
        known = self.held.chat_state(platform, chat_id) if self.held is not None else None
        if known is not None:
            raw: str | bytes | None = known.dialog
        else:
            raw = await self.client.hget(dialogs_key(self.prefix), chat_member(platform, chat_id))
        if raw is None:
            return None
        fields = orjson.loads(raw)
        return Dialog(str(fields["kind"]), int(fields["file_id"]), float(fields["started_at"]))

    async def set_dialog(self, platform: str, chat_id: int, dialog: Dialog | None) -> None:
        """Open (or replace) the chat's dialog; None closes it."""
        raw = None if dialog is None else orjson.dumps(dialog).decode()
        if raw is None:
            await self.client.hdel(dialogs_key(self.prefix), chat_member(platform, chat_id))
        else:
            await self.client.hset(dialogs_key(self.prefix), chat_member(platform, chat_id), raw)
        if self.held is not None:
            self.held.note_dialog(platform, chat_id, raw)

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

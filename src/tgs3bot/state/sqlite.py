"""The bot's state in an SQLite file (``interfaces.StateStore``), and the in-process queue's journal.

Why SQLite: it is embedded (no server to run or reach), one file survives restarts, and its
transactions make each operation atomic even if the process dies in the middle of it. The tables
and queries are in ``sqlite_schema``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

import aiosqlite
import structlog

from tgs3bot.errors import StartupError
from tgs3bot.events import ChatKey, UserKey
from tgs3bot.interfaces import Dialog, SavedFile
from tgs3bot.state import sqlite_schema as schema
from tgs3bot.state.paging import page_cursor
from tgs3bot.state.sqlite_batch import WriteBatch
from tgs3bot.state.sqlite_loop import LoopWriter
from tgs3bot.state.sqlite_unique_ids import UniqueIdNotes
from tgs3bot.utils import log_exceptions

log = structlog.get_logger(__name__)


class SqliteState(UniqueIdNotes):
    """State in an SQLite file: ``async with SqliteState(path) as state: ...``.

    One connection (aiosqlite's), and one lock around each operation: the workers share the
    connection, and without the lock one task's commit could land in the middle of another's
    transaction. The marks and the journal have connections of their own (``writer``, ``sqlite_loop``).

    The checks made for every update stay off the disk in the common case (measured: three
    queries per update cost ~0.65 ms, more than the rest of a text reply):

    - a chat's greeting and dialog are read together, once, and then kept in memory (only this
      process writes them); dialogs are written through. That read runs on the loop, on the
      writer's reader (``sqlite_loop`` says why);
    - handled ids are remembered in memory for this run, and every id handled before this run or
      dropped from memory is at most ``_unknown_above`` (per platform: each numbers its own
      updates), so only such an id asks the database.
      Nothing assumes that ids grow: Telegram restarts them at a random value after a week
      without updates. Handled ids older than ``schema.HANDLED_RETENTION_S`` are forgotten, in memory
      and on disk, every ``schema.PRUNE_INTERVAL_S`` while running, so a reused id is not mistaken for
      a handled one.
    - Marks (handled ids, greeted chats) are written in batches, by ``writer``: with the
      journal's next batch, every ``schema.MARK_FLUSH_INTERVAL_S`` or ``schema.MARK_FLUSH_BATCH``
      marks, and at close. A crash loses at most that last batch, and an update Telegram then sends
      again is handled again (at least once, never lost); a chat may be greeted twice.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock  # tests pass an old clock to write rows that are due for pruning
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._chats: dict[ChatKey, _Chat] = {}  # bounded by schema.CHAT_CACHE_LIMIT
        # (platform, update id) → when, handled in this run, oldest first (bounded)
        self._recent: dict[tuple[str, int], float] = {}
        self._unknown_above: dict[str, int] = {}  # per platform: ids above were never handled before
        self.batch = WriteBatch()
        self.writer = LoopWriter(path)  # writes the marks, with the journal's batches
        self._flusher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        """Open the file (creating it and its directory), bring its schema up to date, prune."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path)
            await self._prepare(self._db)
            self.writer.open()
        except BaseException as exc:
            await self.__aexit__()
            if isinstance(exc, OSError | sqlite3.DatabaseError):  # unreadable, not SQLite, no space
                raise StartupError(f"cannot open the state file {self.path}: {exc}") from exc
            raise
        self._flusher = asyncio.create_task(log_exceptions(self._flush_regularly)(), name="state-flusher")
        return self

    async def _prepare(self, db: aiosqlite.Connection) -> None:
        await schema.configure(db)
        await schema.migrate(db, self.path)
        await db.execute(schema.PRUNE_HANDLED_SQL, (self._clock() - schema.HANDLED_RETENTION_S,))
        await db.commit()
        rows = await db.execute_fetchall(schema.MAX_HANDLED_SQL)
        self._unknown_above = {str(platform): int(highest) for platform, highest in rows}

    async def __aexit__(self, *exc_info: object) -> None:
        """Write the pending marks and close the connections."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        db, self._db = self._db, None
        try:
            await self.flush()
        finally:
            self.writer.close()
            if db is not None:
                await db.close()

    async def _flush_regularly(self) -> None:
        pruned_at = time.monotonic()
        while True:
            await asyncio.sleep(schema.MARK_FLUSH_INTERVAL_S)
            try:
                await self.flush()
                await self.writer.checkpoint()
                if time.monotonic() - pruned_at >= schema.PRUNE_INTERVAL_S:
                    await self.prune()
                    pruned_at = time.monotonic()
            except sqlite3.Error as exc:  # "database is locked" and the like: the marks stay pending
                log.warning("state_flush_failed", error=str(exc), pending=len(self.batch))

    async def prune(self) -> None:
        """Forget handled ids older than ``schema.HANDLED_RETENTION_S``, in memory and on disk."""
        cutoff = self._clock() - schema.HANDLED_RETENTION_S
        while self._recent:
            oldest, at = next(iter(self._recent.items()))
            if at >= cutoff:
                break
            del self._recent[oldest]
            self._forgotten(*oldest)  # still on disk until the delete
        await self._write(schema.PRUNE_HANDLED_SQL, (cutoff,))

    async def flush(self) -> None:
        """Write the pending marks and journal removals now (one transaction)."""
        if self.batch:
            await self.commit_batch()

    async def commit_batch(self, sql: str | None = None, params: Sequence[Any] = ()) -> list[Any]:
        """Commit the pending marks, and ``sql`` (a journal batch) with them; ``sql``'s rows."""
        # The state's lock: no transaction of its own connection is open while the writer writes.
        return await self.writer.commit_when_free(self._lock, self.batch, sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, for one atomic operation: committed at the end, rolled back on error."""
        if self._db is None:
            raise RuntimeError("SqliteState is used outside `async with`")
        async with self._lock:
            try:
                yield self._db
            except BaseException:
                await self._db.rollback()
                raise
            if self._db.in_transaction:  # reads open none; skipping the commit saves a thread hop
                await self._db.commit()

    async def _fetchone(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        async with self.transaction() as db:
            rows = list(await db.execute_fetchall(sql, params))  # one trip to aiosqlite's thread
        return rows[0] if rows else None

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        async with self.transaction() as db:
            await db.execute(sql, params)

    def _forgotten(self, platform: str, update_id: int) -> None:
        """A handled id leaves memory: from now on, an id up to it asks the disk."""
        self._unknown_above[platform] = max(self._unknown_above.get(platform, 0), update_id)

    async def _chat(self, key: ChatKey) -> _Chat:
        """The chat's greeting and dialog: from memory, or from the disk in one query."""
        if (chat := self._chats.get(key)) is not None:
            return chat
        # On the loop, without the lock; the LEFT JOIN on one row yields one row.
        [row] = self.writer.reader.execute(schema.LOAD_CHAT_SQL, key).fetchall()
        greeted, kind, file_id, started_at = row
        dialog = None if kind is None else Dialog(str(kind), int(file_id), float(started_at))
        chat = _Chat(greeted=bool(greeted) or self.batch.greets(key), dialog=dialog)
        if len(self._chats) >= schema.CHAT_CACHE_LIMIT:
            self._chats.clear()  # start over from the disk rather than grow without end
        self._chats[key] = chat
        return chat

    async def is_greeted(self, platform: str, chat_id: int) -> bool:
        """Whether the chat has been greeted already."""
        return (await self._chat((platform, chat_id))).greeted

    async def mark_greeted(self, platform: str, chat_id: int) -> None:
        """Remember that the chat has been greeted (written with the next batch of marks)."""
        (await self._chat((platform, chat_id))).greeted = True
        self.batch.greeted.add((platform, chat_id))

    async def is_handled(self, platform: str, update_id: int) -> bool:
        """Whether the update was handled already (in memory unless the id is an old one)."""
        if (platform, update_id) in self._recent:
            return True
        if update_id > self._unknown_above.get(platform, 0):
            return False
        return await self._fetchone(schema.IS_HANDLED_SQL, (platform, update_id)) is not None

    async def mark_handled(self, platform: str, update_id: int) -> None:
        """Remember that the update was handled (until ``schema.HANDLED_RETENTION_S`` has passed)."""
        self._recent[platform, update_id] = self._clock()
        if len(self._recent) > schema.RECENT_HANDLED_LIMIT:
            oldest = next(iter(self._recent))
            del self._recent[oldest]
            self._forgotten(*oldest)
        self.batch.handled.append((platform, update_id, self._clock()))
        if len(self.batch) >= schema.MARK_FLUSH_BATCH:
            try:
                await self.flush()
            except sqlite3.Error as exc:  # the update was handled: its mark waits for the next flush
                log.warning("state_flush_failed", error=str(exc), pending=len(self.batch))

    async def get_dialog(self, platform: str, chat_id: int) -> Dialog | None:
        """The chat's open dialog, if any."""
        return (await self._chat((platform, chat_id))).dialog

    async def set_dialog(self, platform: str, chat_id: int, dialog: Dialog | None) -> None:
        """Open (or replace) the chat's dialog; None closes it."""
        key = (platform, chat_id)
        chat = self._chats.pop(key, None)  # if the write fails, the next read asks the disk
        if dialog is None:
            await self._write(schema.CLOSE_DIALOG_SQL, key)
        else:
            await self._write(schema.OPEN_DIALOG_SQL, (*key, dialog.kind, dialog.file_id, dialog.started_at))
        if chat is not None:  # written through: the next read needs no trip to the disk
            chat.dialog = dialog
            self._chats[key] = chat

    async def record_file(
        self, key: str, *, platform: str, owner_id: int, chat_id: int, size: int, saved_at: float
    ) -> SavedFile:
        """Index a saved object; saving the same key again updates its entry and keeps its id."""
        row = await self._fetchone(schema.RECORD_FILE_SQL, (key, owner_id, chat_id, size, saved_at, platform))
        assert row is not None  # RETURNING yields the inserted or updated row
        return schema.saved_file(row)

    async def get_file(self, file_id: int) -> SavedFile | None:
        """The index entry with that id, if any."""
        row = await self._fetchone(schema.GET_FILE_SQL, (file_id,))
        return None if row is None else schema.saved_file(row)

    async def rename_file(self, file_id: int, new_key: str) -> None:
        """Move the entry to ``new_key``, dropping any other entry of that key; unknown ids are ignored."""
        async with self.transaction() as db:
            await db.execute(
                "DELETE FROM files WHERE key = ? AND id != ? AND EXISTS (SELECT 1 FROM files WHERE id = ?)",
                (new_key, file_id, file_id),
            )
            await db.execute("UPDATE files SET key = ? WHERE id = ?", (new_key, file_id))

    async def forget_file(self, file_id: int) -> None:
        """Drop the entry, if there is one."""
        await self._write("DELETE FROM files WHERE id = ?", (file_id,))

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
        whose = owner or ()
        page_sql = schema.LIST_FILES_SQL[bool(whose), None if page is None else page[0]]
        count_sql = schema.COUNT_FILES_SQL[bool(whose)]
        limit = max(limit, 0)
        params = (*whose, *(page[1] if page else ()), limit + 1)  # one row more says whether there is more
        async with self.transaction() as db:  # the lock keeps writes out between page and total
            rows = list(await db.execute_fetchall(page_sql, params))
            counts = list(await db.execute_fetchall(count_sql, whose))
        files = [schema.saved_file(row) for row in rows[:limit]]
        return (files[::-1] if after is not None else files), len(rows) > limit, int(counts[0][0])

    async def get_cursor(self, platform: str) -> str | None:
        """Where the platform's poller stopped reading, if it was saved."""
        row = await self._fetchone(schema.GET_CURSOR_SQL, (platform,))
        return None if row is None else str(row[0])

    async def set_cursor(self, platform: str, value: str) -> None:
        """Save the platform's read position (committed when this returns)."""
        await self._write(schema.SET_CURSOR_SQL, (platform, value))


@dataclasses.dataclass(slots=True)
class _Chat:
    """What ``SqliteState`` keeps in memory per chat."""

    greeted: bool
    dialog: Dialog | None

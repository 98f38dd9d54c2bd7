"""The in-process queue's journal in the SQLite state file (SPEC §5, the embedded default).

Each poll's batch is written in one transaction before the poller sends the getUpdates that
confirms it to Telegram; an update leaves the journal with its handled mark (``WriteBatch``), so
whatever a crash interrupts is still in the file at the next start.

Why the journal has its own connection, used on the event loop, while the rest of the state goes
through aiosqlite's thread: the journal is written once per poll batch, on the path of every
update, and handing that write to a thread beside the event loop cost more than SQLite's work
itself (bench/README.md, "The journal's cost"): through aiosqlite the journal cost 22 to 34 % of
the CPU per text update, written here at most 9 %. The price: the loop waits for each batch's
commit, fsync included (~0.6 ms for 26 updates on the bench machine, ~0.4 ms of it the fsync),
so a slow disk slows the whole process (the text benchmark's time: +2 to +26 %).
The write holds the state's lock, so the state's own connection has no transaction open and SQLite
never makes the loop wait for a lock this process holds (the transaction holding it could only
finish once the loop ran again). Checkpoints of the WAL stay on the state's connection, off the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Self

from tgs3bot.events import ChatKey, Event, from_json, to_json
from tgs3bot.state.sqlite import SqliteState
from tgs3bot.state.sqlite_schema import JOURNAL_ALL_SQL, JOURNAL_APPEND_SQL, JOURNAL_CHAT_SQL


class SqliteJournal:
    """``interfaces.Journal`` in the ``journal`` table of an open ``SqliteState``'s file.

    ``async with SqliteJournal(state) as journal: ...``, inside the state's ``async with``.
    """

    def __init__(self, state: SqliteState) -> None:
        self._state = state
        self._db: sqlite3.Connection | None = None

    async def __aenter__(self) -> Self:
        # Autocommit (isolation_level=None): each batch is one BEGIN IMMEDIATE … COMMIT written here.
        db = sqlite3.connect(self._state.path, isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")  # per connection: each batch is on the disk when it returns
        db.execute("PRAGMA wal_autocheckpoint=0")  # the state's connection checkpoints, on its thread
        self._db = db
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    async def append(self, events: Sequence[Event]) -> list[tuple[int, Event]]:
        """Write the events in one transaction; return the ones not journaled before, with their seq."""
        if not events:
            return []
        by_id = {(e.platform, e.update_id): e for e in events}
        params = [v for e in by_id.values() for v in (e.platform, e.update_id, e.chat_id, to_json(e))]
        # One statement for the whole batch; RETURNING names the rows inserted (not the ones
        # ignored), in the order of their seq.
        sql = JOURNAL_APPEND_SQL.format(rows=", ".join(["(?, ?, ?, ?)"] * len(by_id)))
        async with self._state.exclusive():
            added = self._write(sql, params)
        return sorted((int(seq), by_id[str(platform), int(update_id)]) for seq, platform, update_id in added)

    def _write(self, sql: str, params: list[Any]) -> list[Any]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        with db:  # commits; rolls back on an error, a failed commit included
            return db.execute(sql, params).fetchall()

    async def entries(
        self, chat: ChatKey | None = None, *, after_seq: int = 0, limit: int = -1
    ) -> list[tuple[int, Event]]:
        """Entries in ``seq`` order: all, or one chat's after ``after_seq`` (at most ``limit``)."""
        db = self._connection()
        if chat is None:
            rows = db.execute(JOURNAL_ALL_SQL).fetchall()
        else:
            rows = db.execute(JOURNAL_CHAT_SQL, (*chat, after_seq, limit)).fetchall()
        return [(int(seq), from_json(body)) for seq, body in rows]

    async def remove(self, platform: str, update_id: int) -> None:
        """Forget a finished update, with the next batch of marks."""
        self._state.batch.finished.append((platform, update_id))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SqliteJournal is used outside `async with`")
        return self._db

"""The state file's connection for the marks and the journal's batches (SPEC §5).

Each poll batch's journal rows are written in one transaction together with the handled marks,
greetings and journal removals gathered since the last one (``WriteBatch``): one commit, one fsync,
per batch. Between batches the state's flusher commits what is pending the same way.

The statements run on the event loop, with a connection of their own rather than through
aiosqlite's thread: they are on the path of every update, and handing each to a thread beside the
loop cost more than SQLite's work itself (bench/README.md, "The journal's cost"). Only the COMMIT,
which writes the WAL and waits for its fsync (~0.4 ms on the bench machine, at times tens of
milliseconds), runs on a thread of its own: the loop serves what is queued meanwhile, and the batch is
admitted once it is durable. The marks go with the journal's rows because, written through
aiosqlite, a flush held the state's lock for four trips to that thread and back (10 to 20 ms on a
busy loop), and the poller's next batch waited for it.

Neither a lock nor a checkpoint makes the loop wait on the disk:

- the connection does not wait for SQLite's locks (timeout 0). ``commit_when_free`` writes under
  the state's lock, so no transaction of this process is open, and while another process holds
  the file it sleeps and tries again, up to ``BUSY_TIMEOUT_S``;
- it never checkpoints (``wal_autocheckpoint=0``; a checkpoint copies the WAL into the file and
  fsyncs it): ``checkpoint`` does that on a thread, with a connection of its own;
- reads have a connection of their own (``reader``), never held up by a commit (a WAL reader
  waits for no writer): the journal's, and each chat's first read (its greeting and dialog). On
  the loop such a read takes tens of microseconds; through aiosqlite it took a trip to that thread
  and the state's lock, and while a batch's COMMIT held that lock through its fsync, every new
  chat's first message waited for it. What a COMMIT in flight wrote is not readable yet: the
  ``WriteBatch`` keeps it (``committing``) until the COMMIT ends.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

from tgs3bot.state.sqlite_batch import WriteBatch

BUSY_TIMEOUT_S = 5.0  # how long a write waits for another process's lock (sqlite3's own default)
BUSY_FIRST_SLEEP_S = 0.001
BUSY_MAX_SLEEP_S = 0.1
CLOSED = "SqliteState is used outside `async with` (its loop connections are closed)"


class LoopWriter:
    """Connections to the state file for short statements run on the event loop (see the module text)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._committer: ThreadPoolExecutor | None = None
        self._unchecked = False  # committed since the last checkpoint

    def open(self) -> None:
        """Connect; the file's schema must be in place (WAL mode is a property of the file)."""
        # Autocommit (isolation_level=None): each transaction is the BEGIN IMMEDIATE … COMMIT below.
        # check_same_thread=False: statements run on the loop and each COMMIT on the committer's
        # thread, never at once (``commit`` holds the state's lock until its COMMIT is done).
        db = sqlite3.connect(self.path, isolation_level=None, timeout=0, check_same_thread=False)
        db.execute("PRAGMA synchronous=FULL")  # per connection: a commit is on the disk when it returns
        db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on a thread (``checkpoint``)
        self._db = db
        self._reader = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="state-commit")

    def close(self) -> None:
        """Close the connections (what is pending in the ``WriteBatch`` stays there)."""
        committer, self._committer = self._committer, None
        if committer is not None:
            committer.shutdown()  # a COMMIT still running (its caller was cancelled) ends first
        for db in (self._db, self._reader):
            if db is not None:
                db.close()
        self._db = self._reader = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection the batches are written on."""
        if self._db is None:
            raise RuntimeError(CLOSED)
        return self._db

    @property
    def reader(self) -> sqlite3.Connection:
        """A connection for reads on the loop (committed rows only)."""
        if self._reader is None:
            raise RuntimeError(CLOSED)
        return self._reader

    async def commit_when_free(
        self,
        lock: asyncio.Lock,
        batch: WriteBatch,
        sql: str | None = None,
        params: Sequence[Any] = (),
    ) -> list[Any]:
        """``commit`` under ``lock``, trying again while another process holds the file."""
        waited, sleep = 0.0, BUSY_FIRST_SLEEP_S
        while True:
            async with lock:
                try:
                    return await self.commit(batch, sql, params)
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or waited >= BUSY_TIMEOUT_S:
                        raise
            await asyncio.sleep(sleep)
            waited, sleep = waited + sleep, min(2 * sleep, BUSY_MAX_SLEEP_S)

    async def commit(
        self, batch: WriteBatch, sql: str | None = None, params: Sequence[Any] = ()
    ) -> list[Any]:
        """One transaction: ``sql`` (if given) and the batch's pending writes. Returns ``sql``'s rows."""
        db = self.connection
        db.execute("BEGIN IMMEDIATE")  # fails at once if another process is writing the file
        try:
            rows = db.execute(sql, params).fetchall() if sql else []
            taken = batch.write(db)  # on an error, the writes are back in the batch
        except BaseException:
            db.execute("ROLLBACK")
            raise
        await self._commit_off_the_loop(db, batch, taken)
        self._unchecked = True
        return rows

    async def _commit_off_the_loop(
        self, db: sqlite3.Connection, batch: WriteBatch, taken: WriteBatch
    ) -> None:
        """COMMIT on the committer's thread; if it fails, ``taken`` goes back into the batch."""
        committing = asyncio.get_running_loop().run_in_executor(self._committer, _commit, db)
        batch.committing = taken  # until the COMMIT ends, reads on the loop find these here
        try:
            await asyncio.shield(committing)  # cancelled or not, the COMMIT runs to its end
        except asyncio.CancelledError:
            await asyncio.wait([committing])  # keep the state's lock until the thread is done
            if committing.exception() is not None:
                batch.restore(taken)
            raise
        except BaseException:
            batch.restore(taken)  # not on disk: the next transaction writes them
            raise
        finally:
            batch.committing = None

    async def checkpoint(self) -> None:
        """Copy what this connection committed into the file, on a thread (PASSIVE: it waits for no one)."""
        if self._unchecked:
            self._unchecked = False
            await asyncio.to_thread(_checkpoint, self.path)


def _commit(db: sqlite3.Connection) -> None:
    """COMMIT, on the committer's thread; a failed one is rolled back (SQLite may leave it open)."""
    try:
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _checkpoint(path: Path) -> None:
    with closing(sqlite3.connect(path, timeout=0)) as db:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the file (SQLITE_BUSY or _LOCKED)."""
    primary = exc.sqlite_errorcode & 0xFF  # the primary code of an extended one
    return primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

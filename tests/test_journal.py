"""The SQLite journal: batches written at once, read back in order, gone only with their handled mark."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.helpers import eventually, make_event
from tgs3bot.events import Event, from_json, to_json
from tgs3bot.state import SqliteState
from tgs3bot.state.sqlite_journal import SqliteJournal
from tgs3bot.state.sqlite_schema import MARK_GREETED_SQL


def ids(entries: list[tuple[int, Event]]) -> list[int]:
    """The update ids of journal entries."""
    return [event.update_id for _, event in entries]


async def on_disk(path: Path, update_id: int) -> tuple[list[int], bool]:
    """What the next process finds in the file: the journal's update ids, and whether the Telegram
    update ``update_id`` is marked handled."""
    async with SqliteState(path) as other:
        return ids(await SqliteJournal(other).entries()), await other.is_handled("telegram", update_id)


async def test_a_batch_is_journaled_once_and_read_back_in_the_order_taken(tmp_path: Path) -> None:
    """append returns the new entries with growing seqs; a redelivered update is not journaled twice."""
    async with SqliteState(tmp_path / "s.sqlite3") as state:
        journal = SqliteJournal(state)
        first = await journal.append([make_event(900, chat_id=1), make_event(5, chat_id=2)])
        again = await journal.append([make_event(5, chat_id=2), make_event(6, chat_id=1)])
        assert ids(first) == [900, 5] and ids(again) == [6]
        assert [seq for seq, _ in first + again] == sorted(seq for seq, _ in first + again)
        assert ids(await journal.entries()) == [900, 5, 6]  # the order taken, not the ids' order
        assert ids(await journal.entries(("telegram", 1), after_seq=first[0][0], limit=5)) == [6]
        assert (await journal.entries(("telegram", 2)))[0][1] == make_event(
            5, chat_id=2
        )  # the whole event comes back


async def test_the_journal_survives_a_process_that_never_closed_the_file(tmp_path: Path) -> None:
    """Entries written by append are on disk at once: another connection sees them without a close."""
    path = tmp_path / "s.sqlite3"
    async with SqliteState(path) as crashed:
        journal = SqliteJournal(crashed)
        await journal.append([make_event(1), make_event(2)])
        assert await on_disk(path, 1) == ([1, 2], False)


async def test_a_finished_update_leaves_the_journal_with_its_handled_mark(tmp_path: Path) -> None:
    """remove goes in the batch of mark_handled: both on disk after the flush, neither before it."""
    path = tmp_path / "s.sqlite3"
    async with SqliteState(path) as state:
        journal = SqliteJournal(state)
        await journal.append([make_event(1), make_event(2)])
        await state.mark_handled("telegram", 1)
        await journal.remove("telegram", 1)
        assert await on_disk(path, 1) == ([1, 2], False)
        await state.flush()
        assert await on_disk(path, 1) == ([2], True)


async def test_the_loop_connection_syncs_every_commit_and_never_checkpoints(tmp_path: Path) -> None:
    """``synchronous`` is per connection: the one the journal and the marks are written on must be
    FULL (2), as the state's is, or a power cut could lose a batch that the next poll already
    confirmed. It leaves checkpoints (an fsync of the whole file) to a thread, and waits for no
    lock (SQLite's busy wait would block the event loop)."""
    async with SqliteState(tmp_path / "s.sqlite3") as state:
        db = state.writer.connection
        assert db.execute("PRAGMA synchronous").fetchone() == (2,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        assert db.execute("PRAGMA busy_timeout").fetchone() == (0,)


async def test_a_batch_and_the_marks_pending_are_one_transaction(tmp_path: Path) -> None:
    """The marks and removals gathered since the last batch are committed with the next batch."""
    path = tmp_path / "s.sqlite3"
    async with SqliteState(path) as state:
        journal = SqliteJournal(state)
        await journal.append([make_event(1)])
        await state.mark_handled("telegram", 1)
        await journal.remove("telegram", 1)
        await journal.append([make_event(2)])
        assert not state.batch
        assert await on_disk(path, 1) == ([2], True)


async def test_the_loop_connections_commits_reach_the_file_by_checkpoints(tmp_path: Path) -> None:
    """The loop's connection never checkpoints; the state's flusher does, on a thread, so the WAL
    does not grow without end. A connection that ignores the WAL (immutable) sees only the file."""
    path = tmp_path / "s.sqlite3"

    def rows_in_the_file() -> int:
        try:
            with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as db:
                return int(db.execute("SELECT count(*) FROM journal").fetchone()[0])
        except sqlite3.DatabaseError:  # read while a checkpoint writes the file: look again
            return -1

    async with SqliteState(path) as state:
        journal = SqliteJournal(state)
        for first in range(1, 100, 10):
            await journal.append([make_event(update_id) for update_id in range(first, first + 10)])
        assert rows_in_the_file() < 100  # not checkpointed by the writes themselves

        async def checkpointed() -> bool:
            return rows_in_the_file() == 100

        await eventually(checkpointed)


async def test_a_batch_cancelled_during_its_commit_is_on_disk_whole(tmp_path: Path) -> None:
    """The COMMIT runs on a thread and cannot be stopped halfway: a poller cancelled meanwhile
    (SIGTERM) leaves the batch and the marks that went with it on disk, none of them pending twice,
    and the state's lock free for the next batch."""
    path = tmp_path / "s.sqlite3"
    async with SqliteState(path) as state:
        journal = SqliteJournal(state)
        await state.mark_handled("telegram", 7)
        append = asyncio.create_task(journal.append([make_event(1)]))
        await asyncio.sleep(0)  # the append runs up to its COMMIT, handed to the thread
        append.cancel()
        with pytest.raises(asyncio.CancelledError):
            await append
        assert not state.batch  # committed with the batch, not put back for another commit
        assert await on_disk(path, 7) == ([1], True)
        assert ids(await journal.append([make_event(2)])) == [2]


def fail_commits_after_a_mark(db: sqlite3.Connection) -> None:
    """Make each COMMIT on ``db`` fail once a handled mark was written in its transaction.

    SQLite checks a deferred foreign key at COMMIT: with every mark, a temporary trigger adds a row
    that breaks one, so the statements succeed and the COMMIT itself is refused.
    """
    db.executescript(
        """
        PRAGMA foreign_keys = ON;
        CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
        CREATE TEMP TRIGGER break_the_commit AFTER INSERT ON main.handled
            BEGIN INSERT INTO child VALUES (1); END;
        """
    )


async def test_a_batch_whose_commit_fails_leaves_nothing_and_keeps_its_marks(tmp_path: Path) -> None:
    """A COMMIT refused after the batch's statements ran: the append fails, nothing of the batch
    is on disk, the marks that went with it are pending again, and the next batch writes them."""
    path = tmp_path / "s.sqlite3"
    async with SqliteState(path) as state:
        journal = SqliteJournal(state)
        await state.mark_handled("telegram", 7)
        fail_commits_after_a_mark(state.writer.connection)
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await journal.append([make_event(1)])
        assert not state.writer.connection.in_transaction
        assert [(platform, update_id) for platform, update_id, _ in state.batch.handled] == [("telegram", 7)]
        assert await on_disk(path, 7) == ([], False)
        state.writer.connection.execute("DROP TRIGGER break_the_commit")
        assert ids(await journal.append([make_event(2)])) == [2]
        assert not state.batch
        assert await on_disk(path, 7) == ([2], True)


async def test_a_batch_waits_for_another_process_that_writes_the_file(tmp_path: Path) -> None:
    """The loop's connection does not wait for a lock (SQLite's busy wait would hold the event loop,
    and every chat, for seconds): while another process writes the file, the batch is tried again
    after short sleeps, and lands once the file is free."""
    path = tmp_path / "s.sqlite3"
    async with SqliteState(path) as state:
        journal = SqliteJournal(state)
        with closing(sqlite3.connect(path, timeout=0)) as other_process:
            other_process.execute("BEGIN IMMEDIATE")
            append = asyncio.create_task(journal.append([make_event(1)]))
            for _ in range(20):
                await asyncio.sleep(0)  # the loop runs on while the append waits
            assert not append.done()
            other_process.rollback()
        assert ids(await append) == [1]


async def test_a_batch_waits_for_an_open_state_transaction_not_blocking_the_loop(tmp_path: Path) -> None:
    """The journal's statements run on the event loop with a connection of their own. While the
    state's connection holds a write transaction, a batch waits on the state's lock (SQLite's busy
    wait would block the very loop that has to finish that transaction), and lands once it ends."""
    async with SqliteState(tmp_path / "s.sqlite3") as state:
        journal = SqliteJournal(state)
        opened, release = asyncio.Event(), asyncio.Event()

        async def hold_a_transaction() -> None:
            async with state.transaction() as db:
                await db.execute(MARK_GREETED_SQL, ("telegram", 5))
                opened.set()
                await release.wait()

        holder = asyncio.create_task(hold_a_transaction())
        await opened.wait()
        append = asyncio.create_task(journal.append([make_event(1)]))
        for _ in range(20):
            await asyncio.sleep(0)  # let the append run as far as it can
        assert not append.done()
        release.set()
        await holder
        assert ids(await append) == [1]
        assert ids(await journal.entries()) == [1] and await state.is_greeted("telegram", 5)


def test_an_event_written_before_platforms_existed_reads_as_telegram() -> None:
    """A journal or Redis body without ``platform`` (written by an older bot) is a Telegram event."""
    old_body = (
        b'{"update_id":7,"kind":"message","chat_id":3,"user_id":3,"private":true,"message_id":1,"text":"hi"}'
    )
    event = from_json(old_body)
    assert event.platform == "telegram" and event.text == "hi"
    vk_event = make_event(7, chat_id=3, platform="vk")
    assert from_json(to_json(vk_event)) == vk_event

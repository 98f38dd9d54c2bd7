"""The SQLite state under faults and over time: a locked file, update ids that are reused."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.helpers import eventually
from tgs3bot.state import SqliteState
from tgs3bot.state.sqlite_schema import HANDLED_RETENTION_S, MARK_FLUSH_BATCH

DEADLINE_S = 60.0


def handled_on_disk(path: Path) -> int:
    """How many handled ids another connection sees in the file."""
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM handled").fetchone()[0])


async def test_a_locked_file_delays_the_marks_but_fails_no_update_and_no_flusher(
    tmp_path: Path,
) -> None:
    """While another process holds the file locked, marks stay pending; once it lets go they are written."""
    path = tmp_path / "s.sqlite3"
    async with SqliteState(path) as state:
        locker = sqlite3.connect(path, timeout=0)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            for update_id in range(1, MARK_FLUSH_BATCH + 1):
                await state.mark_handled(
                    "telegram", update_id
                )  # the batch is full: a flush is tried, and fails
            assert await state.is_handled("telegram", MARK_FLUSH_BATCH)
        finally:
            locker.rollback()
            locker.close()

        async def all_written() -> bool:
            return handled_on_disk(path) == MARK_FLUSH_BATCH

        await eventually(all_written)  # the background flusher goes on and writes them


async def test_handled_ids_past_their_retention_are_forgotten_while_running(tmp_path: Path) -> None:
    """An id handled more than a week ago may be Telegram's id for a new update: prune forgets it."""
    now = [1_700_000_000.0]
    path = tmp_path / "s.sqlite3"
    async with SqliteState(path, clock=lambda: now[0]) as state:
        await state.mark_handled("telegram", 42)
        await state.flush()
        now[0] += HANDLED_RETENTION_S + 1
        await state.mark_handled("telegram", 43)
        await state.prune()
        assert not await state.is_handled("telegram", 42)
        assert await state.is_handled("telegram", 43)
        await state.flush()
        assert handled_on_disk(path) == 1

"""Paging the saved-files index by cursor, on the memory and SQLite stores (test_state_redis runs
the shared ones on Redis): entries dropped or added while paging never shift others out of view."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.test_state import NOW, record
from tgs3bot.interfaces import StateStore
from tgs3bot.state import MemoryState, SqliteState
from tgs3bot.state.sqlite_schema import LIST_FILES_SQL


@pytest.fixture(params=["memory", "sqlite"])
async def state(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    """Each implementation in turn, opened for the test and closed after it."""
    path = tmp_path / "state.sqlite3"
    store: MemoryState | SqliteState = MemoryState() if request.param == "memory" else SqliteState(path)
    async with store:
        yield store


async def test_list_files_pages_back_with_an_after_cursor(state: StateStore) -> None:
    """``after`` gives the entries just newer than the cursor, newest first, and says if more are newer."""
    entries = [await record(state, f"{n:02}.pdf", saved_at=NOW + n) for n in range(25)]
    cursor = (entries[4].saved_at, entries[4].id)  # 20 entries are newer
    page, more, total = await state.list_files(("telegram", 1), limit=10, after=cursor)
    assert ([f.key for f in page], more, total) == ([f"{n:02}.pdf" for n in range(14, 4, -1)], True, 25)
    page, more, _ = await state.list_files(("telegram", 1), limit=10, after=(page[0].saved_at, page[0].id))
    assert ([f.key for f in page], more) == ([f"{n:02}.pdf" for n in range(24, 14, -1)], False)
    newest = entries[-1]
    assert await state.list_files(("telegram", 1), limit=10, after=(newest.saved_at, newest.id)) == (
        [],
        False,
        25,
    )
    with pytest.raises(ValueError, match="one cursor"):
        await state.list_files(("telegram", 1), limit=10, before=cursor, after=cursor)


async def test_list_files_by_cursor_skips_nothing_when_entries_are_dropped(state: StateStore) -> None:
    """Entries forgotten while paging (gone from the bucket) never shift another one out of view."""
    for n in range(25):
        await record(state, f"{n:02}.pdf", saved_at=NOW + n)
    first, _, _ = await state.list_files(("telegram", 1), limit=10)
    for gone in first[3:5]:  # dropped while the first page is shown
        await state.forget_file(gone.id)
    await state.forget_file(first[-1].id)  # the cursor's own entry may be gone too
    second, more, total = await state.list_files(
        ("telegram", 1), limit=10, before=(first[-1].saved_at, first[-1].id)
    )
    assert ([f.key for f in second], more, total) == ([f"{n:02}.pdf" for n in range(14, 4, -1)], True, 22)
    back, more, _ = await state.list_files(
        ("telegram", 1), limit=10, after=(second[0].saved_at, second[0].id)
    )
    assert ([f.key for f in back], more) == ([f.key for f in first[:-1] if f not in first[3:5]], False)


async def test_list_files_cursors_split_entries_saved_at_the_same_moment(state: StateStore) -> None:
    """A cursor inside a group of equal times continues by id, both ways, and the pages tile the list."""
    for n in range(40):  # four distinct times, ten entries each, interleaved by id and owner
        await record(state, f"{n:02}.pdf", saved_at=NOW + (n * 7 % 4) / 2, owner_id=1 + n % 2)
    for owner in (None, 1):
        everything, _, total = await state.list_files(_owner(owner), limit=100)
        order = [(f.saved_at, f.id) for f in everything]
        assert order == sorted(order, reverse=True) and total == len(everything)
        assert await _walk_older(state, owner, limit=3) == [f.id for f in everything]
        assert await _walk_newer(state, owner, limit=4) == [f.id for f in reversed(everything)]


def _owner(owner: int | None) -> tuple[str, int] | None:
    return None if owner is None else ("telegram", owner)


async def _walk_older(state: StateStore, owner: int | None, *, limit: int) -> list[int]:
    """Every id from the newest, a page at a time with ``before`` cursors."""
    page, more, _ = await state.list_files(_owner(owner), limit=limit)
    ids = [f.id for f in page]
    while more:
        page, more, _ = await state.list_files(
            _owner(owner), limit=limit, before=(page[-1].saved_at, page[-1].id)
        )
        ids += [f.id for f in page]
    return ids


async def _walk_newer(state: StateStore, owner: int | None, *, limit: int) -> list[int]:
    """Every id from the oldest, a page at a time with ``after`` cursors (each page is newest first)."""
    page, more, _ = await state.list_files(_owner(owner), limit=limit, after=(0.0, 0))
    ids = [f.id for f in reversed(page)]
    while more:
        page, more, _ = await state.list_files(
            _owner(owner), limit=limit, after=(page[0].saved_at, page[0].id)
        )
        ids += [f.id for f in reversed(page)]
    return ids


async def test_sqlite_listing_of_thousands_uses_the_indexes(tmp_path: Path) -> None:
    """With 5,000 entries a deep page is right, and every listing query walks an index instead of sorting."""
    newest_first = sorted(range(5000), key=lambda n: (n // 3, n), reverse=True)  # id = n + 1
    async with SqliteState(tmp_path / "state.sqlite3") as state:
        for n in range(5000):
            await record(state, f"{n}.pdf", owner_id=1 + n % 2, saved_at=NOW + n // 3)
        at = newest_first[2499]
        page, _, total = await state.list_files(None, limit=10, before=(NOW + at // 3, at + 1))
        mine_first = [n for n in newest_first if n % 2 == 1]
        at = mine_first[1999]
        mine, _, my_total = await state.list_files(("telegram", 2), limit=10, before=(NOW + at // 3, at + 1))
    assert ([f.key for f in page], total) == ([f"{n}.pdf" for n in newest_first[2500:2510]], 5000)
    assert ([f.key for f in mine], my_total) == ([f"{n}.pdf" for n in mine_first[2000:2010]], 2500)
    with closing(sqlite3.connect(tmp_path / "state.sqlite3")) as db:
        for owner, cursor in itertools.product((True, False), (None, "before", "after")):
            params = ("telegram", 2) * owner + (NOW + 800, 2400) * (cursor is not None) + (11,)
            plan = " | ".join(
                row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {LIST_FILES_SQL[owner, cursor]}", params)
            )
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            assert cursor is None or "saved_at" in plan, plan  # the cursor is a range on the index

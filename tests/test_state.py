"""The state store: every behaviour on both implementations, and what only the SQLite file adds."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

import tgs3bot.state.sqlite_schema
from tgs3bot.errors import StartupError
from tgs3bot.interfaces import Dialog, SavedFile, StateStore
from tgs3bot.state import MemoryState, SqliteState
from tgs3bot.state.sqlite_schema import HANDLED_RETENTION_S, SCHEMA_VERSION

NOW = 1_700_000_000.0


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    """A state file in a directory that does not exist yet."""
    return tmp_path / "nested" / "state.sqlite3"


@pytest.fixture(params=["memory", "sqlite"])
async def state(request: pytest.FixtureRequest, state_path: Path) -> AsyncIterator[StateStore]:
    """Each implementation in turn, opened for the test and closed after it."""
    store: MemoryState | SqliteState = MemoryState() if request.param == "memory" else SqliteState(state_path)
    async with store:
        yield store


async def record(state: StateStore, key: str, *, owner_id: int = 1, saved_at: float = NOW) -> SavedFile:
    """Index ``key`` with made-up details."""
    return await state.record_file(
        key, platform="telegram", owner_id=owner_id, chat_id=owner_id + 100, size=len(key), saved_at=saved_at
    )


async def test_greeting_is_remembered_per_chat(state: StateStore) -> None:
    """A chat is not greeted until marked, and marking twice is harmless."""
    assert not await state.is_greeted("telegram", 1)
    await state.mark_greeted("telegram", 1)
    await state.mark_greeted("telegram", 1)
    assert await state.is_greeted("telegram", 1)
    assert not await state.is_greeted("telegram", 2)


async def test_handled_update_ids_are_remembered(state: StateStore) -> None:
    """An update id is handled only once marked, and marking twice is harmless."""
    assert not await state.is_handled("telegram", 10)
    await state.mark_handled("telegram", 10)
    await state.mark_handled("telegram", 10)
    assert await state.is_handled("telegram", 10)
    assert not await state.is_handled("telegram", 11)


async def test_dialog_is_set_replaced_and_closed(state: StateStore) -> None:
    """A chat's dialog can be opened, replaced by a newer one, and closed with None."""
    first, second = Dialog("rename", 1, NOW), Dialog("rename", 2, NOW + 1)
    assert await state.get_dialog("telegram", 5) is None
    await state.set_dialog("telegram", 5, first)
    assert await state.get_dialog("telegram", 5) == first
    await state.set_dialog("telegram", 5, second)
    assert await state.get_dialog("telegram", 5) == second
    assert await state.get_dialog("telegram", 6) is None
    await state.set_dialog("telegram", 5, None)
    await state.set_dialog("telegram", 5, None)
    assert await state.get_dialog("telegram", 5) is None


async def test_record_file_gives_new_keys_new_ids(state: StateStore) -> None:
    """Each new key gets its own id, starting at 1, and the entry keeps what was recorded."""
    a = await state.record_file(
        "a.pdf", platform="telegram", owner_id=7, chat_id=70, size=123, saved_at=NOW + 0.5
    )
    b = await record(state, "b.pdf")
    assert a == SavedFile(1, "a.pdf", 7, 70, 123, NOW + 0.5, "telegram")
    assert b.id == 2
    assert await state.get_file(a.id) == a


async def test_record_file_again_updates_the_entry_and_keeps_its_id(state: StateStore) -> None:
    """Saving the same key again updates owner, chat, size and time but not the id."""
    first = await record(state, "a.pdf")
    await record(state, "other.pdf")
    again = await state.record_file(
        "a.pdf", platform="telegram", owner_id=8, chat_id=80, size=999, saved_at=NOW + 10
    )
    assert again == SavedFile(first.id, "a.pdf", 8, 80, 999, NOW + 10, "telegram")
    assert await state.get_file(first.id) == again
    assert (await state.list_files(None, limit=10))[2] == 2


async def test_get_file_of_unknown_id_is_none(state: StateStore) -> None:
    """An id that was never given out finds nothing."""
    assert await state.get_file(42) is None


async def test_rename_file_moves_the_entry_to_the_new_key(state: StateStore) -> None:
    """After a rename the id keeps its details under the new key, and the new key upserts onto it."""
    entry = await record(state, "old.pdf")
    await state.rename_file(entry.id, "new.pdf")
    assert await state.get_file(entry.id) == SavedFile(entry.id, "new.pdf", 1, 101, 7, NOW, "telegram")
    assert (await record(state, "new.pdf", saved_at=NOW + 1)).id == entry.id
    assert (await record(state, "old.pdf")).id != entry.id


async def test_rename_onto_an_existing_key_drops_that_entry(state: StateStore) -> None:
    """Renaming onto a key that has an entry removes that entry: the bucket has one object per key."""
    moved = await record(state, "a.pdf")
    overwritten = await record(state, "b.pdf")
    await state.rename_file(moved.id, "b.pdf")
    assert await state.get_file(overwritten.id) is None
    assert (await state.get_file(moved.id)) == SavedFile(moved.id, "b.pdf", 1, 101, 5, NOW, "telegram")
    page, more, total = await state.list_files(None, limit=10)
    assert ([f.id for f in page], more, total) == ([moved.id], False, 1)


async def test_rename_onto_its_own_key_or_of_an_unknown_id_changes_nothing(state: StateStore) -> None:
    """A rename to the same key keeps the entry, and a rename of an unknown id drops no other entry."""
    entry = await record(state, "a.pdf")
    await state.rename_file(entry.id, "a.pdf")
    await state.rename_file(999, "a.pdf")
    assert await state.get_file(entry.id) == entry
    assert await state.get_file(999) is None


async def test_forget_file_drops_the_entry(state: StateStore) -> None:
    """A forgotten entry is gone, its key is free again, and forgetting twice is harmless."""
    entry = await record(state, "a.pdf")
    await state.forget_file(entry.id)
    await state.forget_file(entry.id)
    assert await state.get_file(entry.id) is None
    assert await state.list_files(None, limit=10) == ([], False, 0)
    assert (await record(state, "a.pdf")).id != entry.id


async def test_list_files_pages_newest_first(state: StateStore) -> None:
    """25 entries in pages of 10 come as 10, 10 and 5, newest first, each page after the last one shown."""
    for n in range(25):
        await record(state, f"{n:02}.pdf", saved_at=NOW + n)
    pages = [await state.list_files(("telegram", 1), limit=10)]
    while pages[-1][1]:
        last = pages[-1][0][-1]
        pages.append(await state.list_files(("telegram", 1), limit=10, before=(last.saved_at, last.id)))
    assert [(len(page), more, total) for page, more, total in pages] == [
        (10, True, 25),
        (10, True, 25),
        (5, False, 25),
    ]
    keys = [f.key for page, _, _ in pages for f in page]
    assert keys == [f"{n:02}.pdf" for n in reversed(range(25))]
    oldest = pages[-1][0][-1]
    assert await state.list_files(("telegram", 1), limit=10, before=(oldest.saved_at, oldest.id)) == (
        [],
        False,
        25,
    )


async def test_list_files_breaks_ties_by_higher_id_first(state: StateStore) -> None:
    """Entries saved at the same moment list the later-recorded one first."""
    ids = [(await record(state, f"{n}.pdf")).id for n in range(3)]
    page, _, _ = await state.list_files(("telegram", 1), limit=10)
    assert [f.id for f in page] == list(reversed(ids))


async def test_list_files_filters_by_owner_or_lists_everyone(state: StateStore) -> None:
    """An owner sees only their entries; None lists everyone's, interleaved by time."""
    await record(state, "mine-1", owner_id=1, saved_at=NOW)
    await record(state, "theirs", owner_id=2, saved_at=NOW + 1)
    await record(state, "mine-2", owner_id=1, saved_at=NOW + 2)
    mine, _, mine_total = await state.list_files(("telegram", 1), limit=10)
    everyone, _, everyone_total = await state.list_files(None, limit=10)
    assert ([f.key for f in mine], mine_total) == (["mine-2", "mine-1"], 2)
    assert ([f.key for f in everyone], everyone_total) == (["mine-2", "theirs", "mine-1"], 3)
    assert await state.list_files(("telegram", 3), limit=10) == ([], False, 0)


async def test_concurrent_operations_each_stay_atomic(state: StateStore) -> None:
    """Operations started together from many tasks (as the workers do) all land as they would one by one."""
    for n in range(20):
        await record(state, f"{n}.pdf")  # id n + 1
    await asyncio.gather(
        *(state.rename_file(n, f"{n}.pdf") for n in range(1, 21, 2)),  # onto id n + 1's key
        *(state.mark_handled("telegram", n) for n in range(20)),
        *(state.list_files(None, limit=5) for _ in range(5)),
    )
    page, _, total = await state.list_files(None, limit=50)
    assert total == len(page) == 10
    assert sorted(f.key for f in page) == sorted(f"{n}.pdf" for n in range(1, 20, 2))
    assert all([await state.is_handled("telegram", n) for n in range(20)])


async def test_sqlite_state_survives_closing_and_reopening(state_path: Path) -> None:
    """Everything written before closing the file is there after reopening it."""
    async with SqliteState(state_path) as state:
        await state.mark_greeted("telegram", 1)
        await state.mark_handled("telegram", 10)
        await state.set_dialog("telegram", 1, Dialog("rename", 1, NOW))
        entry = await record(state, "a.pdf")
    async with SqliteState(state_path) as state:
        assert await state.is_greeted("telegram", 1)
        assert await state.is_handled("telegram", 10)
        assert await state.get_dialog("telegram", 1) == Dialog("rename", 1, NOW)
        assert await state.get_file(entry.id) == entry
        assert (await record(state, "b.pdf")).id == entry.id + 1


async def test_sqlite_greeting_still_in_the_write_batch_is_known(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A greeting not yet written to the file is still known when the chat is read again from it."""
    # Each new chat drops the ones in memory.
    monkeypatch.setattr(tgs3bot.state.sqlite_schema, "CHAT_CACHE_LIMIT", 1)
    async with SqliteState(state_path) as state:
        await state.mark_greeted("telegram", 1)
        await state.set_dialog("telegram", 1, Dialog("rename", 1, NOW))
        assert not await state.is_greeted("telegram", 2)  # chat 1 leaves memory
        assert await state.is_greeted("telegram", 1)
        assert await state.get_dialog("telegram", 1) == Dialog("rename", 1, NOW)


async def test_sqlite_chat_read_waits_for_no_commit_and_sees_what_it_writes(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat read while a batch's COMMIT runs (its fsync) neither waits for it nor misses its greeting."""
    monkeypatch.setattr(tgs3bot.state.sqlite_schema, "CHAT_CACHE_LIMIT", 1)
    gate = threading.Event()
    async with SqliteState(state_path) as state:
        await state.mark_greeted("telegram", 1)
        assert not await state.is_greeted("telegram", 2)  # chat 1 leaves memory
        committer = state.writer._committer
        assert committer is not None
        committer.submit(gate.wait)  # the COMMIT below waits behind this: held open
        try:
            flushing = asyncio.create_task(state.flush())
            await asyncio.sleep(0)  # the flush writes the greeting; its COMMIT waits behind the gate
            assert state.batch.committing is not None
            reads = asyncio.gather(state.is_greeted("telegram", 1), state.is_greeted("telegram", 3))
            assert list(await asyncio.wait_for(reads, timeout=30)) == [True, False]
            assert not flushing.done()
        finally:
            gate.set()
        await flushing
        assert state.batch.committing is None
        assert await state.is_greeted("telegram", 1)


async def test_sqlite_state_prunes_old_handled_ids_at_open(state_path: Path) -> None:
    """Handled ids older than the retention are gone after reopening; recent ones stay."""
    async with SqliteState(state_path, clock=lambda: NOW - HANDLED_RETENTION_S - 60) as state:
        await state.mark_handled("telegram", 1)
    async with SqliteState(state_path, clock=lambda: NOW - HANDLED_RETENTION_S + 60) as state:
        await state.mark_handled("telegram", 2)
    async with SqliteState(state_path, clock=lambda: NOW) as state:
        assert not await state.is_handled("telegram", 1)
        assert await state.is_handled("telegram", 2)


async def test_sqlite_state_records_its_schema_version(state_path: Path) -> None:
    """A new file carries the current schema version, for later migrations to start from."""
    async with SqliteState(state_path):
        pass
    with closing(sqlite3.connect(state_path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_state_refuses_a_file_from_a_newer_version(state_path: Path) -> None:
    """A file with a schema this code does not know is a start-up error naming the file."""
    async with SqliteState(state_path):
        pass
    with closing(sqlite3.connect(state_path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StartupError, match=r"state\.sqlite3"):
        async with SqliteState(state_path):
            pass


NOT_SQLITE = "not a database\n" * 100


@pytest.fixture
def not_sqlite_path(state_path: Path) -> Path:
    """A state path where a text file already is."""
    state_path.parent.mkdir(parents=True)
    state_path.write_text(NOT_SQLITE)
    return state_path


async def test_sqlite_state_refuses_a_file_that_is_not_sqlite(not_sqlite_path: Path) -> None:
    """A state path holding something else is a start-up error naming the file, which is left alone."""
    with pytest.raises(StartupError, match=r"state\.sqlite3"):
        async with SqliteState(not_sqlite_path):
            pass
    assert await asyncio.to_thread(not_sqlite_path.read_text) == NOT_SQLITE


async def test_sqlite_state_outside_async_with_raises(state_path: Path) -> None:
    """Using the store before opening it is a clear error, not a crash inside aiosqlite."""
    with pytest.raises(RuntimeError, match="async with"):
        await SqliteState(state_path).is_greeted("telegram", 1)

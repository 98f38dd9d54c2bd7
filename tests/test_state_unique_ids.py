"""The index's notes of which platform file each object holds, on all three StateStore backends."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.test_state import NOW, record
from tgs3bot.interfaces import StateStore
from tgs3bot.state import MemoryState, SqliteState
from tgs3bot.state.redis import RedisState
from tgs3bot.state.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from tgs3bot.state.sqlite_unique_ids import FIND_FILES_BY_UNIQUE_ID_SQL

TG = "telegram"  # ``record`` indexes Telegram users' files


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def state(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    """Each implementation in turn (Redis on the tests' own redis-server), open for the test."""
    store: StateStore
    if request.param == "memory":
        store = MemoryState()
    elif request.param == "sqlite":
        store = SqliteState(tmp_path / "state.sqlite3")
    else:
        store = RedisState(request.getfixturevalue("redis_url"))
    async with store:
        yield store


async def test_entries_are_found_by_the_file_they_hold_newest_first(state: StateStore) -> None:
    """Every entry noted with the unique id is found, anyone's, newest first, at most ``limit``."""
    a = await record(state, "a.pdf", owner_id=1, saved_at=NOW)
    b = await record(state, "b.pdf", owner_id=2, saved_at=NOW + 2)
    c = await record(state, "c.pdf", owner_id=1, saved_at=NOW + 1)
    other = await record(state, "other.pdf", saved_at=NOW + 3)
    for entry in (a, b, c):
        await state.set_file_unique_id(TG, entry.id, "AgAD1")
    await state.set_file_unique_id(TG, other.id, "AgAD2")
    assert [f.key for f in await state.find_files_by_unique_id(TG, "AgAD1", limit=10)] == [
        "b.pdf",
        "c.pdf",
        "a.pdf",
    ]
    assert await state.find_files_by_unique_id(TG, "AgAD1", limit=2) == [b, c]
    assert await state.find_files_by_unique_id(TG, "AgAD2", limit=10) == [other]
    assert await state.find_files_by_unique_id(TG, "AgAD3", limit=10) == []


async def test_a_note_is_replaced_cleared_and_ignored_for_unknown_ids(state: StateStore) -> None:
    """Noting another file moves the entry; None clears it; an unknown id changes nothing."""
    a = await record(state, "a.pdf")
    await state.set_file_unique_id(TG, a.id, "AgAD1")
    await state.set_file_unique_id(TG, a.id, "AgAD2")
    assert await state.find_files_by_unique_id(TG, "AgAD1", limit=10) == []
    assert await state.find_files_by_unique_id(TG, "AgAD2", limit=10) == [a]
    await state.set_file_unique_id(TG, a.id, None)
    assert await state.find_files_by_unique_id(TG, "AgAD2", limit=10) == []
    await state.set_file_unique_id(TG, a.id + 1000, "AgAD2")
    assert await state.find_files_by_unique_id(TG, "AgAD2", limit=10) == []


async def test_a_note_follows_renames_and_saves_and_goes_with_its_entry(state: StateStore) -> None:
    """A rename keeps the note (the object moved whole); saving the key again keeps it until
    noted again; a dropped entry (forgotten, or replaced by a rename) is never found."""
    a, b = await record(state, "a.pdf"), await record(state, "b.pdf")
    await state.set_file_unique_id(TG, a.id, "AgAD1")
    await state.set_file_unique_id(TG, b.id, "AgAD2")
    await state.rename_file(a.id, "moved.pdf")
    [moved] = await state.find_files_by_unique_id(TG, "AgAD1", limit=10)
    assert (moved.id, moved.key) == (a.id, "moved.pdf")
    again = await record(state, "moved.pdf", owner_id=7, saved_at=NOW + 5)
    assert await state.find_files_by_unique_id(TG, "AgAD1", limit=10) == [again]
    await state.rename_file(a.id, "b.pdf")  # drops b's entry
    assert await state.find_files_by_unique_id(TG, "AgAD2", limit=10) == []
    await state.forget_file(a.id)
    assert await state.find_files_by_unique_id(TG, "AgAD1", limit=10) == []


async def test_redis_keeps_no_stray_note_keys(redis_url: str) -> None:
    """Forgetting, clearing and renaming over an entry leave no files-by-unique-id set behind."""
    async with RedisState(redis_url) as state:
        a, b, c = await record(state, "a.pdf"), await record(state, "b.pdf"), await record(state, "c.pdf")
        for entry, uid in ((a, "AgAD1"), (b, "AgAD2"), (c, "AgAD3")):
            await state.set_file_unique_id(TG, entry.id, uid)
        await state.forget_file(a.id)
        await state.set_file_unique_id(TG, b.id, None)
        await state.rename_file(b.id, "c.pdf")  # drops c; its set is cleaned by the next lookup
        assert await state.find_files_by_unique_id(TG, "AgAD3", limit=10) == []
        await state.forget_file(b.id)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert sorted(await client.keys("tgs3bot:*")) == ["tgs3bot:file-seq"]
    finally:
        await client.aclose()


async def test_notes_are_per_platform(state: StateStore) -> None:
    """A VK lookup never finds a Telegram entry's note (the same text is another file there), a
    note for another platform's entry is ignored, and a save of the key from another platform
    drops the note while one from the same platform keeps it."""
    tg = await record(state, "tg.pdf")
    vk = await state.record_file("vk.pdf", platform="vk", owner_id=1, chat_id=1, size=3, saved_at=NOW + 1)
    await state.set_file_unique_id(TG, tg.id, "1_2")
    await state.set_file_unique_id("vk", vk.id, "1_2")
    assert await state.find_files_by_unique_id(TG, "1_2", limit=10) == [tg]
    assert await state.find_files_by_unique_id("vk", "1_2", limit=10) == [vk]
    await state.set_file_unique_id("vk", tg.id, "3_4")  # tg.pdf is a Telegram user's entry
    await state.set_file_unique_id("vk", tg.id, None)
    assert await state.find_files_by_unique_id("vk", "3_4", limit=10) == []
    assert await state.find_files_by_unique_id(TG, "1_2", limit=10) == [tg]
    again = await record(state, "tg.pdf", owner_id=2, saved_at=NOW + 2)  # another Telegram user
    assert await state.find_files_by_unique_id(TG, "1_2", limit=10) == [again]
    await state.record_file("tg.pdf", platform="vk", owner_id=2, chat_id=2, size=3, saved_at=NOW + 3)
    assert await state.find_files_by_unique_id(TG, "1_2", limit=10) == []
    assert await state.find_files_by_unique_id("vk", "1_2", limit=10) == [vk]


async def test_redis_names_a_vk_note_with_its_platform(redis_url: str) -> None:
    """Telegram's note sets keep their names (bare ids); VK's carry ``vk:``, as ``scoped`` ids do."""
    async with RedisState(redis_url) as state:
        tg = await record(state, "tg.pdf")
        vk = await state.record_file("vk.pdf", platform="vk", owner_id=1, chat_id=1, size=3, saved_at=NOW)
        await state.set_file_unique_id(TG, tg.id, "AgAD1")
        await state.set_file_unique_id("vk", vk.id, "1_2")
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert sorted(await client.keys("tgs3bot:files-by-unique-id:*")) == [
            "tgs3bot:files-by-unique-id:AgAD1",
            "tgs3bot:files-by-unique-id:vk:1_2",
        ]
    finally:
        await client.aclose()


async def test_a_version_2_file_is_migrated_and_keeps_its_entries(tmp_path: Path) -> None:
    """A state file from before platforms and notes goes v2 → v3 → v4: its entries stay, as
    Telegram's, with no note, and the lookup is a range of the partial index."""
    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        for script in MIGRATIONS[:2]:
            db.executescript(script)
        db.execute(
            "INSERT INTO files (key, owner_id, chat_id, size, saved_at) VALUES ('old.pdf', 1, 1, 3, 1)"
        )
        db.execute("PRAGMA user_version = 2")
        db.commit()
    async with SqliteState(path) as state:
        old = await state.get_file(1)
        assert old is not None and (old.key, old.platform) == ("old.pdf", TG)
        assert await state.find_files_by_unique_id(TG, "AgAD1", limit=10) == []
        await state.set_file_unique_id(TG, old.id, "AgAD1")
        assert await state.find_files_by_unique_id(TG, "AgAD1", limit=10) == [old]
        assert await state.find_files_by_unique_id("vk", "AgAD1", limit=10) == []
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (4,)
        plan = db.execute(f"EXPLAIN QUERY PLAN {FIND_FILES_BY_UNIQUE_ID_SQL}", (TG, "AgAD1", 5)).fetchall()
        assert any("files_by_unique_id" in str(row) for row in plan), plan
        assert not any("TEMP B-TREE" in str(row) for row in plan), plan  # the index gives the order

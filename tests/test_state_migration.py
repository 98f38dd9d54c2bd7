"""The SQLite state file's migrations: a file an older bot wrote opens with everything in it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.helpers import make_event
from tgs3bot.events import to_json
from tgs3bot.interfaces import Dialog, SavedFile
from tgs3bot.state import SqliteState
from tgs3bot.state.sqlite_journal import SqliteJournal
from tgs3bot.state.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

NOW = 1_700_000_000.0
# What a bot before VK journaled: an event without ``platform``.
OLD_BODY = (
    b'{"update_id":31,"kind":"message","chat_id":3,"user_id":3,"private":true,"message_id":1,'
    b'"text":"hi","document":null,"callback_id":null,"callback_data":null}'
)


def write_v2_file(path: Path) -> None:
    """A state file as the last bot before VK left it (schema v2), with a row in every table."""
    with closing(sqlite3.connect(path)) as db:
        for version, script in enumerate(MIGRATIONS[:2], start=1):
            db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
        db.execute("INSERT INTO greeted (chat_id) VALUES (3)")
        db.execute("INSERT INTO handled (update_id, at) VALUES (30, ?)", (NOW,))
        db.execute("INSERT INTO dialogs VALUES (3, 'rename', 1, ?)", (NOW,))
        db.execute(
            "INSERT INTO files (key, owner_id, chat_id, size, saved_at) VALUES ('a.pdf', 3, 3, 9, ?)", (NOW,)
        )
        db.execute("INSERT INTO journal (update_id, chat_id, body) VALUES (31, 3, ?)", (OLD_BODY,))
        db.commit()


async def test_a_v2_file_goes_through_v3_with_every_row_telegrams(tmp_path: Path) -> None:
    """Greetings, handled ids, dialogs, the index and the journal of a v2 file all read as Telegram's
    once it has gone through v3 (platforms) to v4 (the file_unique_id notes)."""
    path = tmp_path / "state.sqlite3"
    write_v2_file(path)
    async with SqliteState(path, clock=lambda: NOW) as state:
        assert await state.is_greeted("telegram", 3) and not await state.is_greeted("vk", 3)
        assert await state.is_handled("telegram", 30) and not await state.is_handled("vk", 30)
        assert await state.get_dialog("telegram", 3) == Dialog("rename", 1, NOW)
        assert await state.get_dialog("vk", 3) is None
        assert await state.get_file(1) == SavedFile(1, "a.pdf", 3, 3, 9, NOW, "telegram")
        assert (await state.list_files(("telegram", 3), limit=10))[2] == 1
        assert (await state.list_files(("vk", 3), limit=10))[2] == 0
        journal = SqliteJournal(state)
        assert [e for _, e in await journal.entries()] == [make_event(31, chat_id=3, message_id=1)]
        added = await journal.append([make_event(31, chat_id=3, platform="vk")])  # a VK update of one id
        assert len(added) == 1 and added[0][0] > 1  # seq goes on after the old entries
        assert (
            await state.record_file("b.pdf", platform="vk", owner_id=3, chat_id=3, size=1, saved_at=NOW)
        ).id == 2
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (4,)
        assert db.execute("SELECT file_unique_id FROM files WHERE id = 1").fetchone() == (None,)


def test_the_old_body_is_what_to_json_wrote_before_platforms() -> None:
    """The fixture's old body is a Telegram event's JSON minus the new field (so the test means something)."""
    event = make_event(31, chat_id=3, message_id=1)
    assert to_json(event).replace(b',"platform":"telegram"', b"") == OLD_BODY


def write_v3_file(path: Path) -> None:
    """A state file as the bot with VK and before the notes left it (schema v3)."""
    with closing(sqlite3.connect(path)) as db:
        for version, script in enumerate(MIGRATIONS[:3], start=1):
            db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
        db.execute("INSERT INTO greeted (platform, chat_id) VALUES ('vk', 5)")
        db.execute("INSERT INTO cursors (platform, value) VALUES ('vk', '42')")
        db.execute(
            "INSERT INTO files (key, owner_id, chat_id, size, saved_at, platform)"
            " VALUES ('a.pdf', 3, 3, 9, ?, 'telegram'), ('v.txt', 5, 5, 4, ?, 'vk')",
            (NOW, NOW + 1),
        )
        db.commit()


async def test_a_v3_file_becomes_v4_and_keeps_every_platforms_rows(tmp_path: Path) -> None:
    """A v3 file (platforms, cursors) gains the notes' column only: its rows stay, with no note."""
    path = tmp_path / "state.sqlite3"
    write_v3_file(path)
    async with SqliteState(path, clock=lambda: NOW) as state:
        assert await state.is_greeted("vk", 5) and not await state.is_greeted("telegram", 5)
        assert await state.get_cursor("vk") == "42"
        assert await state.get_file(1) == SavedFile(1, "a.pdf", 3, 3, 9, NOW, "telegram")
        assert await state.get_file(2) == SavedFile(2, "v.txt", 5, 5, 4, NOW + 1, "vk")
        assert await state.find_files_by_unique_id("vk", "5_7", limit=10) == []
        await state.set_file_unique_id("vk", 2, "5_7")
        assert await state.find_files_by_unique_id("vk", "5_7", limit=10) == [await state.get_file(2)]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (4,)

"""The state store keeps each platform's ids apart (SPEC §6), and a poll cursor per platform.

The shared behaviours run on memory and SQLite here (``state`` fixture) and on Redis in
test_state_redis.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_state import NOW, record, state, state_path
from tgs3bot.interfaces import Dialog, StateStore
from tgs3bot.state import SqliteState

__all__ = ["state", "state_path"]  # the fixtures, used here


async def test_a_vk_user_and_a_telegram_user_of_one_number_never_meet(state: StateStore) -> None:
    """Greeting, handled ids, dialogs and the listing are each per platform, whatever the numbers."""
    await state.mark_greeted("vk", 5)
    await state.mark_handled("vk", 10)
    await state.set_dialog("vk", 5, Dialog("rename", 1, NOW))
    assert not await state.is_greeted("telegram", 5) and await state.is_greeted("vk", 5)
    assert not await state.is_handled("telegram", 10) and await state.is_handled("vk", 10)
    assert await state.get_dialog("telegram", 5) is None
    vk_file = await state.record_file("vk.pdf", platform="vk", owner_id=5, chat_id=5, size=1, saved_at=NOW)
    tg_file = await record(state, "tg.pdf", owner_id=5, saved_at=NOW + 1)
    assert vk_file.owner == ("vk", 5) and tg_file.owner == ("telegram", 5)
    assert await state.get_file(vk_file.id) == vk_file
    assert (await state.list_files(("vk", 5), limit=10))[0] == [vk_file]
    assert (await state.list_files(("telegram", 5), limit=10))[0] == [tg_file]
    assert (await state.list_files(None, limit=10))[0] == [tg_file, vk_file]
    taken = await state.record_file(
        "vk.pdf", platform="telegram", owner_id=5, chat_id=5, size=2, saved_at=NOW
    )
    assert taken.id == vk_file.id and (await state.list_files(("vk", 5), limit=10))[0] == []


async def test_poll_cursor_is_kept_per_platform(state: StateStore) -> None:
    """A platform's saved cursor is replaced by the next, and one platform's is not another's."""
    assert await state.get_cursor("vk") is None
    await state.set_cursor("vk", "41")
    await state.set_cursor("vk", "42")
    assert await state.get_cursor("vk") == "42"
    assert await state.get_cursor("telegram") is None


async def test_sqlite_poll_cursor_survives_reopening(state_path: Path) -> None:
    """A cursor saved before the file was closed is there at the next open."""
    async with SqliteState(state_path) as state:
        await state.set_cursor("vk", "1234")
    async with SqliteState(state_path) as state:
        assert await state.get_cursor("vk") == "1234"

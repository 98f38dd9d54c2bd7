"""RedisState on a real redis-server: every shared StateStore behaviour, and what sharing adds.

The behaviour tests are test_state's own functions, imported so they run here against this
module's ``state`` fixture: one definition of what a StateStore does, three implementations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.redis_server import free_port
from tests.test_state import (
    NOW,
    record,
    test_concurrent_operations_each_stay_atomic,
    test_dialog_is_set_replaced_and_closed,
    test_forget_file_drops_the_entry,
    test_get_file_of_unknown_id_is_none,
    test_greeting_is_remembered_per_chat,
    test_handled_update_ids_are_remembered,
    test_list_files_breaks_ties_by_higher_id_first,
    test_list_files_filters_by_owner_or_lists_everyone,
    test_list_files_pages_newest_first,
    test_record_file_again_updates_the_entry_and_keeps_its_id,
    test_record_file_gives_new_keys_new_ids,
    test_rename_file_moves_the_entry_to_the_new_key,
    test_rename_onto_an_existing_key_drops_that_entry,
    test_rename_onto_its_own_key_or_of_an_unknown_id_changes_nothing,
)
from tests.test_state_paging import (
    test_list_files_by_cursor_skips_nothing_when_entries_are_dropped,
    test_list_files_cursors_split_entries_saved_at_the_same_moment,
    test_list_files_pages_back_with_an_after_cursor,
)
from tests.test_state_platforms import (
    test_a_vk_user_and_a_telegram_user_of_one_number_never_meet,
    test_poll_cursor_is_kept_per_platform,
)
from tgs3bot.errors import StartupError
from tgs3bot.interfaces import Dialog, SavedFile
from tgs3bot.redis_client import redacted
from tgs3bot.state.redis import RedisState
from tgs3bot.state.sqlite_schema import HANDLED_RETENTION_S

SHARED_BEHAVIOURS = (
    test_a_vk_user_and_a_telegram_user_of_one_number_never_meet,
    test_greeting_is_remembered_per_chat,
    test_poll_cursor_is_kept_per_platform,
    test_handled_update_ids_are_remembered,
    test_dialog_is_set_replaced_and_closed,
    test_record_file_gives_new_keys_new_ids,
    test_record_file_again_updates_the_entry_and_keeps_its_id,
    test_get_file_of_unknown_id_is_none,
    test_rename_file_moves_the_entry_to_the_new_key,
    test_rename_onto_an_existing_key_drops_that_entry,
    test_rename_onto_its_own_key_or_of_an_unknown_id_changes_nothing,
    test_forget_file_drops_the_entry,
    test_list_files_pages_newest_first,
    test_list_files_pages_back_with_an_after_cursor,
    test_list_files_by_cursor_skips_nothing_when_entries_are_dropped,
    test_list_files_cursors_split_entries_saved_at_the_same_moment,
    test_list_files_breaks_ties_by_higher_id_first,
    test_list_files_filters_by_owner_or_lists_everyone,
    test_concurrent_operations_each_stay_atomic,
)


@pytest.fixture
async def state(redis_url: str) -> AsyncIterator[RedisState]:
    """A RedisState on an empty server, for the shared behaviour tests."""
    async with RedisState(redis_url) as store:
        yield store


async def test_state_survives_a_new_instance_on_the_same_server(redis_url: str) -> None:
    """Everything written by one RedisState is there for the next one (a restarted process)."""
    async with RedisState(redis_url) as state:
        await state.mark_greeted("telegram", 1)
        await state.mark_handled("telegram", 10)
        await state.set_dialog("telegram", 1, Dialog("rename", 1, NOW))
        entry = await record(state, "a.pdf")
    async with RedisState(redis_url) as state:
        assert await state.is_greeted("telegram", 1)
        assert await state.is_handled("telegram", 10)
        assert await state.get_dialog("telegram", 1) == Dialog("rename", 1, NOW)
        assert await state.get_file(entry.id) == entry
        assert (await record(state, "b.pdf")).id == entry.id + 1


async def test_two_instances_see_each_others_writes(redis_url: str) -> None:
    """A write through one RedisState is read at once through another (another worker process)."""
    async with RedisState(redis_url) as one, RedisState(redis_url) as other:
        entry = await record(one, "a.pdf")
        await one.mark_handled("telegram", 7)
        await other.set_dialog("telegram", 3, Dialog("rename", entry.id, NOW))
        await other.rename_file(entry.id, "b.pdf")
        assert await other.get_file(entry.id) == SavedFile(entry.id, "b.pdf", 1, 101, 5, NOW, "telegram")
        assert await other.is_handled("telegram", 7)
        assert await one.get_dialog("telegram", 3) == Dialog("rename", entry.id, NOW)
        assert await one.list_files(("telegram", 1), limit=5) == ([await other.get_file(entry.id)], False, 1)


async def test_concurrent_saves_from_two_instances_share_one_id_sequence(redis_url: str) -> None:
    """Two processes indexing at once never give one id twice, and one key keeps one entry."""
    async with RedisState(redis_url) as one, RedisState(redis_url) as other:
        saved = await asyncio.gather(
            *(record(store, f"{n}.pdf") for n in range(20) for store in (one, other))
        )
        assert len({f.id for f in saved}) == 20  # each key saved twice, once per process
        page, _, total = await one.list_files(None, limit=50)
        assert total == len(page) == 20


async def test_a_greeted_chat_is_remembered_in_memory_and_an_ungreeted_one_is_asked_again(
    state: RedisState, raw: aioredis.Redis
) -> None:
    """True is served from memory (a chat is never un-greeted: SREM behind its back changes nothing);
    False is never cached: a greeting marked by another process is seen at once."""
    await state.mark_greeted("telegram", 1)
    await raw.srem("tgs3bot:greeted", "1")
    assert await state.is_greeted("telegram", 1)
    assert not await state.is_greeted("telegram", 2)
    await raw.sadd("tgs3bot:greeted", "2")  # another process greets chat 2
    assert await state.is_greeted("telegram", 2)
    await raw.srem("tgs3bot:greeted", "2")
    assert await state.is_greeted("telegram", 2)  # remembered from the read above


async def test_the_greeted_cache_is_bounded(
    state: RedisState, raw: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When full, the cache is cleared: its chats are asked of Redis again."""
    monkeypatch.setattr("tgs3bot.state.redis.GREETED_CACHE_SIZE", 2)
    for chat in (1, 2, 3):
        await state.mark_greeted("telegram", chat)
    await raw.delete("tgs3bot:greeted")
    assert [await state.is_greeted("telegram", chat) for chat in (1, 2, 3)] == [False, False, True]


async def test_handled_ids_expire(state: RedisState, raw: aioredis.Redis) -> None:
    """A handled id is a key with a TTL of at most the retention, so Redis forgets it by itself."""
    await state.mark_handled("telegram", 10)
    ttl = await raw.ttl("tgs3bot:handled:10")
    assert 0 < ttl <= HANDLED_RETENTION_S


async def test_index_keys_are_gone_after_forgetting_everything(
    state: RedisState, raw: aioredis.Redis
) -> None:
    """Forgetting and renaming leave no stray entry behind in any of the index's structures."""
    a, b = await record(state, "a.pdf", owner_id=1), await record(state, "b.pdf", owner_id=2)
    await record(state, "a.pdf", owner_id=3)  # the key changes owner
    await state.rename_file(a.id, "b.pdf")  # drops b
    await state.forget_file(a.id)
    assert await state.get_file(b.id) is None
    assert sorted(await raw.keys("tgs3bot:*")) == ["tgs3bot:file-seq"]


async def test_a_prefix_keeps_two_bots_apart(redis_url: str) -> None:
    """Two bots with different prefixes on one server share nothing."""
    async with RedisState(redis_url, prefix="one:") as one, RedisState(redis_url, prefix="two:") as two:
        await one.mark_greeted("telegram", 1)
        await record(one, "a.pdf")
        assert not await two.is_greeted("telegram", 1)
        assert await two.list_files(None, limit=5) == ([], False, 0)


async def test_unreachable_server_is_a_startup_error_without_the_password() -> None:
    """A server that does not answer is a start-up error naming the URL, never its password."""
    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(StartupError, match=r"127\.0\.0\.1") as caught:
        async with RedisState(url):
            pass
    assert "s3cret" not in str(caught.value)


def test_redacted_hides_only_the_password() -> None:
    """The URL keeps user, host, port and db, and shows *** where the password was."""
    assert redacted("redis://user:pw@host:6380/2") == "redis://user:***@host:6380/2"
    assert redacted("redis://:pw@host") == "redis://:***@host"
    assert redacted("redis://host:6379/0") == "redis://host:6379/0"


async def test_state_outside_async_with_raises(redis_url: str) -> None:
    """Using the store before opening it is a clear error."""
    with pytest.raises(RuntimeError, match="async with"):
        await RedisState(redis_url).record_file(
            "a", platform="telegram", owner_id=1, chat_id=1, size=1, saved_at=NOW
        )

"""The ``done`` script built per queue (``queues.redis_done``), on a real redis-server: the settings
written into its text work whatever their characters, and processes of one configuration share it."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from tests.helpers import make_event
from tgs3bot.queues.redis import RedisQueue
from tgs3bot.queues.redis_done import DoneSettings, script

DEADLINE_S = 30.0  # generous: the machine may be busy


async def cached_scripts(raw: aioredis.Redis) -> int:
    """How many scripts the server holds (SCRIPT LOAD and EVAL add them; only SCRIPT FLUSH drops them)."""
    return int((await raw.info("memory"))["number_of_cached_scripts"])


async def test_a_prefix_of_any_characters_is_written_into_the_script_intact(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Quotes, a backslash, a space and a non-ASCII letter in the prefix: the done script's keys are
    the queue's, so a chat's events come out in order and its lane and counts are emptied."""
    prefix = 'we"ird\\ é:'
    async with RedisQueue(redis_url, queue_size=10, prefix=prefix) as queue:
        await queue.put_batch([make_event(1, chat_id=1), make_event(2, chat_id=1)])
        for update_id in (1, 2):
            event = await asyncio.wait_for(queue.get(), DEADLINE_S)
            assert event.update_id == update_id
            await queue.task_done(event)
        assert await queue.counts() == (0, 0)
    assert await raw.exists(f"{prefix}lane:1", f"{prefix}active") == 0
    assert await raw.keys("tgs3bot:*") == []


async def test_processes_of_one_configuration_share_one_done_script(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """A second process (another consumer) adds no script to Redis's cache; another queue size does."""
    await raw.script_flush()

    async def one_event_through(queue_size: int, update_id: int) -> None:
        async with RedisQueue(redis_url, queue_size=queue_size) as queue:
            await queue.put_batch([make_event(update_id, chat_id=update_id)])
            await queue.task_done(await asyncio.wait_for(queue.get(), DEADLINE_S))

    await one_event_through(10, 1)
    cached = await cached_scripts(raw)
    await one_event_through(10, 2)
    assert await cached_scripts(raw) == cached
    await one_event_through(20, 3)
    assert await cached_scripts(raw) == cached + 1


def test_the_settings_are_constants_of_the_script() -> None:
    """Two configurations give two scripts, each naming its own prefix, bounds and streams."""
    settings = DoneSettings("bot:", 10, 60, 100, 50, 10_000, "bot:greeted", "bot:dialogs", ["bot:ready:vk"])
    text = script(settings)
    assert 'local P, GREETED, DIALOGS = "bot:", "bot:greeted", "bot:dialogs"' in text
    assert "local SIZE, FLOOR, BACKLOG_LIMIT = 100, 50, 10000" in text
    assert 'local STREAMS = {"bot:ready:vk"}' in text

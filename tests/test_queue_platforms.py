"""Both queues keep a VK chat and a Telegram chat of one number apart (SPEC §6)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from tests.helpers import make_event
from tests.test_queue_redis import DEADLINE_S, assert_nothing_left, raw
from tests.test_queues import queue_holding
from tgs3bot.queues.journal import MemoryJournal
from tgs3bot.queues.redis import RedisQueue

__all__ = ["raw"]  # the fixture, used here


async def test_in_process_a_vk_chat_and_a_telegram_chat_of_one_number_are_two_lanes() -> None:
    """Same chat id and update id on two platforms: both are kept, and neither waits for the other."""
    journal = MemoryJournal()
    telegram, vk = make_event(7, chat_id=5), make_event(7, chat_id=5, platform="vk")
    queue = await queue_holding(10, telegram, vk, journal=journal)
    first = await asyncio.wait_for(queue.get(), DEADLINE_S)
    second = await asyncio.wait_for(queue.get(), DEADLINE_S)  # not held up: another chat
    assert {first.platform, second.platform} == {"telegram", "vk"}
    assert len(await journal.entries()) == 2
    await queue.task_done(vk)
    assert [e.platform for _, e in await journal.entries()] == ["telegram"]


async def test_redis_a_vk_chat_and_a_telegram_chat_of_one_number_are_two_lanes(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Same chat id and update id on two platforms: both are queued, and both are handed out at once."""
    telegram, vk = make_event(7, chat_id=5), make_event(7, chat_id=5, platform="vk")
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await queue.put_batch([telegram, vk])
        first = await asyncio.wait_for(queue.get(), DEADLINE_S)
        second = await asyncio.wait_for(queue.get(), DEADLINE_S)  # not held up: another chat
        assert {first, second} == {telegram, vk}
        assert await raw.exists("tgs3bot:lane:5", "tgs3bot:lane:vk:5") == 2  # Telegram's name as before
        await queue.task_done(vk)
        await queue.task_done(telegram)
    await assert_nothing_left(raw)

"""Both queues keep a VK chat and a Telegram chat of one number apart (SPEC §6); Redis leases per platform."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from tests.helpers import make_event
from tests.test_queue_redis import DEADLINE_S, assert_nothing_left
from tests.test_queues import queue_holding
from tgs3bot.errors import LeaseLost
from tgs3bot.lease import PollerLease
from tgs3bot.queues.journal import MemoryJournal
from tgs3bot.queues.redis import RedisQueue


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


async def test_each_platform_has_its_own_poller_lease_and_fence(redis_url: str, raw: aioredis.Redis) -> None:
    """One process may poll Telegram while another polls VK; a batch is fenced by its platform's lease."""
    telegram_lease = PollerLease(raw, lease_s=30)
    vk_lease = PollerLease(raw, lease_s=30, platform="vk")
    assert await telegram_lease.try_acquire() and await vk_lease.try_acquire()  # two leases
    assert not await PollerLease(raw, lease_s=30, platform="vk").try_acquire()  # one VK poller
    assert await raw.exists("tgs3bot:poller-lease", "tgs3bot:poller-lease:vk") == 2
    async with RedisQueue(redis_url, queue_size=10, lease_token=vk_lease.token) as vk_poller_queue:
        await vk_poller_queue.put_batch([make_event(1, chat_id=1, platform="vk")])
        with pytest.raises(LeaseLost):  # this token holds VK's lease, not Telegram's
            await vk_poller_queue.put_batch([make_event(2, chat_id=2)])
    shared = PollerLease(raw, lease_s=30, platform="vk", token=telegram_lease.token)
    await vk_lease.release()
    assert await shared.try_acquire()  # one process's leases share its token
    async with RedisQueue(redis_url, queue_size=10, lease_token=telegram_lease.token) as both:
        await both.put_batch([make_event(3, chat_id=3)])
        await both.put_batch([make_event(3, chat_id=3, platform="vk")])
    assert await raw.exists("tgs3bot:seen:3", "tgs3bot:seen:vk:3", "tgs3bot:seen:vk:1") == 3

"""Both queues keep a VK chat and a Telegram chat of one number apart (SPEC §6); Redis leases per platform."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as aioredis

from tests.helpers import eventually, make_event
from tests.test_queue_redis import DEADLINE_S, assert_nothing_left
from tests.test_queues import queue_holding
from tgs3bot.backends import open_backends
from tgs3bot.config import Settings
from tgs3bot.errors import LeaseLost
from tgs3bot.events import Event, to_json
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


async def test_a_process_takes_only_its_own_platforms_updates(redis_url: str, raw: aioredis.Redis) -> None:
    """A process configured for Telegram only never takes a VK update: it waits in VK's stream for a
    process that has VK's settings (none is dropped), while Telegram's still come to the first."""
    vk, telegram = make_event(1, chat_id=5, platform="vk"), make_event(2, chat_id=5)
    async with (
        RedisQueue(redis_url, queue_size=10, platforms=["telegram"]) as telegram_only,
        RedisQueue(redis_url, queue_size=10, platforms=["vk"]) as vk_only,
    ):
        await telegram_only.put_batch([vk])
        waiting = asyncio.create_task(telegram_only.get())  # first in line for the VK update's turn
        assert await asyncio.wait_for(vk_only.get(), DEADLINE_S) == vk
        await vk_only.task_done(vk)
        await telegram_only.put_batch([telegram])
        assert await asyncio.wait_for(waiting, DEADLINE_S) == telegram
        await telegram_only.task_done(telegram)
    await assert_nothing_left(raw)


async def left_by_an_older_version(raw: aioredis.Redis, *events: Event) -> None:
    """A VK chat's lane and its turn in ``ready``, as versions before a stream per platform left
    them (the counts for a queue of 10: a share of 1)."""
    chat = f"vk:{events[0].chat_id}"
    await raw.rpush(f"tgs3bot:lane:{chat}", *(to_json(e) for e in events))
    await raw.sadd("tgs3bot:active", chat)
    await raw.mset({"tgs3bot:queued": len(events), "tgs3bot:admitted": 1})
    await raw.xgroup_create("tgs3bot:ready", "workers", id="0", mkstream=True)
    await raw.xadd("tgs3bot:ready", {"chat": chat, "body": to_json(events[0]), "fresh": "1"})


async def test_a_vk_turn_an_older_version_left_in_ready_moves_to_vks_stream(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Before each platform had a stream, every turn was in ``ready``: a Telegram-only process that
    reads a VK one there hands it on to VK's stream, where a VK process takes it."""
    vk = make_event(1, chat_id=5, platform="vk")
    await left_by_an_older_version(raw, vk)
    async with RedisQueue(redis_url, queue_size=10, platforms=["telegram"]) as telegram_only:
        waiting = asyncio.create_task(telegram_only.get())

        async def moved() -> bool:
            return await raw.xlen("tgs3bot:ready") == 0 and await raw.xlen("tgs3bot:ready:vk") == 1

        await eventually(moved)
        async with RedisQueue(redis_url, queue_size=10, platforms=["vk"]) as vk_only:
            assert await asyncio.wait_for(vk_only.get(), DEADLINE_S) == vk
            await vk_only.task_done(vk)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    await assert_nothing_left(raw)


async def test_a_vk_process_finishes_a_vk_turn_an_older_version_left_in_ready(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """A process with VK's settings (here VK's only, as a bot without Telegram runs) handles such a
    turn where it is, acknowledges it there, and the chat's next turn is in VK's stream."""
    first, second = make_event(1, chat_id=5, platform="vk"), make_event(2, chat_id=5, platform="vk")
    await left_by_an_older_version(raw, first, second)
    async with RedisQueue(redis_url, queue_size=10, platforms=["vk"]) as vk_only:
        assert await asyncio.wait_for(vk_only.get(), DEADLINE_S) == first
        await vk_only.task_done(first)
        assert await raw.xlen("tgs3bot:ready:vk") == 1  # the next turn
        assert await asyncio.wait_for(vk_only.get(), DEADLINE_S) == second
        await vk_only.task_done(second)
    await assert_nothing_left(raw)


async def test_a_process_reads_the_streams_of_the_platforms_it_has_settings_for(
    settings_for: Callable[..., Settings], redis_url: str
) -> None:
    """The bot's Redis queue is given the settings' platforms: here Telegram's only."""
    async with AsyncExitStack() as stack:
        queue = (await open_backends(stack, settings_for(redis_url=redis_url))).queue
        assert isinstance(queue, RedisQueue)
        assert (queue.platforms, queue.streams) == (frozenset({"telegram"}), ["tgs3bot:ready:telegram"])

"""RedisQueue on a real redis-server: a dead worker's turns are claimed by a live process, and
only by one with workers; a live worker's long transfer keeps its turn (the heartbeat)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from tests.helpers import eventually, make_event
from tests.test_queue_redis import DEADLINE_S, assert_nothing_left
from tgs3bot.queues.redis import RedisQueue

STREAMS = pytest.mark.parametrize(
    ("platform", "stream"), [("telegram", "tgs3bot:ready:telegram"), ("vk", "tgs3bot:ready:vk")]
)


@STREAMS
async def test_a_dead_workers_turn_is_claimed_by_another(
    redis_url: str, raw: aioredis.Redis, platform: str, stream: str
) -> None:
    """A dead worker's turn goes to a live queue after claim_idle_s, and the dead consumer is forgotten."""
    async with RedisQueue(redis_url, queue_size=10, claim_idle_s=0.5) as queue:
        await queue.put_batch([make_event(n, chat_id=1, platform=platform) for n in (1, 2)])
        # What a crashed process leaves: a turn in its consumer's pending list, no heartbeat.
        taken = await raw.xreadgroup("workers", "dead-worker", {stream: ">"}, count=1)
        assert taken
        first = await asyncio.wait_for(queue.get(), DEADLINE_S)
        assert first.update_id == 1
        await queue.task_done(first)
        second = await asyncio.wait_for(queue.get(), DEADLINE_S)
        assert second.update_id == 2
        await queue.task_done(second)

        async def dead_worker_forgotten() -> bool:
            consumers = await raw.xinfo_consumers(stream, "workers")
            return "dead-worker" not in {c["name"] for c in consumers}

        await eventually(dead_worker_forgotten)
    await assert_nothing_left(raw)


async def test_a_process_without_waiting_workers_claims_nothing(redis_url: str, raw: aioredis.Redis) -> None:
    """A queue nobody takes events from (a poller) leaves a dead worker's turn to a process with workers."""
    async with RedisQueue(redis_url, queue_size=10, claim_idle_s=0.5) as poller:
        await poller.put_batch([make_event(1, chat_id=1)])
        await raw.xreadgroup("workers", "dead-worker", {"tgs3bot:ready:telegram": ">"}, count=1)
        passes = poller.claim_passes

        async def poller_looked_several_times() -> bool:
            return poller.claim_passes >= passes + 4  # a pass every claim_idle_s / 2

        await eventually(poller_looked_several_times)
        pending = await raw.xpending_range("tgs3bot:ready:telegram", "workers", "-", "+", 10)
        assert [p["consumer"] for p in pending] == ["dead-worker"]
        async with RedisQueue(redis_url, queue_size=10, claim_idle_s=0.5) as worker:
            event = await asyncio.wait_for(worker.get(), DEADLINE_S)
            assert event.update_id == 1
            await worker.task_done(event)
    await assert_nothing_left(raw)


@STREAMS
async def test_a_live_workers_long_transfer_is_not_claimed(
    redis_url: str, raw: aioredis.Redis, platform: str, stream: str
) -> None:
    """A turn held for several times claim_idle_s by a live queue stays its own: the heartbeat keeps it."""
    async with (
        RedisQueue(redis_url, queue_size=10, claim_idle_s=2) as holder,
        RedisQueue(redis_url, queue_size=10, claim_idle_s=2) as other,
    ):
        await holder.put_batch([make_event(1, chat_id=1, platform=platform)])
        event = await asyncio.wait_for(holder.get(), DEADLINE_S)
        stealing = asyncio.create_task(other.get())
        passes = other.claim_passes

        async def other_tried_for_a_while() -> bool:
            return other.claim_passes >= passes + 4  # a pass every claim_idle_s / 2

        await eventually(other_tried_for_a_while)
        assert not stealing.done()
        pending = await raw.xpending_range(stream, "workers", "-", "+", 10)
        assert [p["consumer"] for p in pending] == [holder.consumer]
        await holder.task_done(event)
        stealing.cancel()
    await assert_nothing_left(raw)

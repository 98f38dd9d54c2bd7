"""How RedisQueue finishes events (``queues.redis_finish``), on a real redis-server: a ``done``
takes a spare turn when none is ready, a worker with a turn ready goes on without waiting for its
``done``, a drain waits for those and hands back the spares, and a background ``done`` that fails
is logged and ends the next worker to ask the queue for anything."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from structlog.testing import capture_logs

from tests.helpers import eventually, make_event
from tgs3bot.queues.redis import RedisQueue

DEADLINE_S = 30.0  # generous: the machine may be busy


async def chats_one_taken(queue: RedisQueue, chats: int = 3) -> None:
    """Chats 1, 2, 3… with an event each; chat 1's is handled and done, which takes two turns."""
    await queue.put_batch([make_event(n, chat_id=n) for n in range(1, chats + 1)])
    first = await asyncio.wait_for(queue.get(), DEADLINE_S)
    assert first.update_id == 1
    assert not queue.turns.ready
    await queue.task_done(first)


async def test_a_done_takes_a_spare_turn_when_none_is_ready(redis_url: str, raw: aioredis.Redis) -> None:
    """With no turn ready, a done takes two: one for its worker, one spare; both are this consumer's."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await chats_one_taken(queue)
        assert [turn.chat_id for turn in queue.turns.ready] == ["2", "3"]
        pending = await raw.xpending("tgs3bot:ready:telegram", "workers")
        assert pending["pending"] == 2
        assert [c["name"] for c in pending["consumers"]] == [queue.consumer]


async def test_events_finished_without_waiting_are_all_done_in_redis(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """With a turn ready, task_done does not wait for its done; every event still ends done, once."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await chats_one_taken(queue)
        for update_id in (2, 3):
            event = await asyncio.wait_for(queue.get(), DEADLINE_S)
            assert event.update_id == update_id
            await queue.task_done(event)
        await queue.drain()
        assert await queue.counts() == (0, 0)
    assert await raw.exists("tgs3bot:lane:2", "tgs3bot:lane:3", "tgs3bot:active") == 0
    assert (await raw.xpending("tgs3bot:ready:telegram", "workers"))["pending"] == 0


async def test_a_drain_hands_back_the_spare_turns(redis_url: str) -> None:
    """A drain waits for the dones sent without waiting, then hands back the turns they took."""
    async with (
        RedisQueue(redis_url, queue_size=10) as other,  # claim_idle_s = 60: no takeover
        RedisQueue(redis_url, queue_size=10) as queue,
    ):
        await chats_one_taken(queue, chats=4)  # chat 4's turn: for the background done to take
        second = await asyncio.wait_for(queue.get(), DEADLINE_S)
        await queue.task_done(second)  # chat 3's turn is ready: this done goes in the background
        await asyncio.wait_for(queue.drain(), DEADLINE_S)
        assert not queue.turns.owned()
        left = [await asyncio.wait_for(other.get(), DEADLINE_S) for _ in range(2)]
        assert sorted(event.update_id for event in left) == [3, 4]
        for event in left:
            await other.task_done(event)


async def test_a_background_done_that_fails_ends_the_next_worker(redis_url: str, raw: aioredis.Redis) -> None:
    """A done nobody waits for fails (its stream was deleted): it is logged with its update, and the
    next get raises its error, as the worker's own done failing would."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await chats_one_taken(queue)
        second = await asyncio.wait_for(queue.get(), DEADLINE_S)
        await raw.delete("tgs3bot:ready:telegram")  # its consumer group with it: XPENDING fails
        with capture_logs() as logs:
            await queue.task_done(second)

            async def logged() -> bool:
                return any(entry["event"] == "queue_done_failed" for entry in logs)

            await eventually(logged, DEADLINE_S)
        failed = next(entry for entry in logs if entry["event"] == "queue_done_failed")
        assert failed["update_id"] == 2
        assert failed["log_level"] == "error"
        with pytest.raises(ResponseError, match="NOGROUP"):
            await asyncio.wait_for(queue.get(), DEADLINE_S)
        # The stream back (empty), so that leaving can hand back chat 3's turn (it finds it not owned).
        await raw.xgroup_create("tgs3bot:ready:telegram", "workers", id="0", mkstream=True)


async def stream_reads(raw: aioredis.Redis) -> int:
    """XREADGROUP calls the server ran since its stats were reset (those inside scripts too)."""
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_xreadgroup", {}).get("calls", 0))


async def test_a_get_with_a_done_in_flight_waits_for_its_turn_rather_than_read_the_stream(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """No turn ready, but a done sent in the background may bring one: get waits for that done and
    hands out the turn it took (with its chat's state), without reading the stream itself. (A read
    would find the stream empty and block, while the turn waited here unseen.)"""
    async with RedisQueue(redis_url, queue_size=10, platforms=("telegram",)) as queue:
        await chats_one_taken(queue, chats=4)
        second = await asyncio.wait_for(queue.get(), DEADLINE_S)
        await raw.config_resetstat()
        await queue.task_done(second)  # in the background: it takes chat 4's turn
        third = await asyncio.wait_for(queue.get(), DEADLINE_S)  # chat 3's, the one that was ready
        assert not queue.turns.ready
        fourth = await asyncio.wait_for(queue.get(), DEADLINE_S)
        assert fourth.update_id == 4
        assert queue.turns.chat_state("telegram", 4) is not None
        assert await stream_reads(raw) == 1  # the done's own, for chat 4's turn
        for event in (third, fourth):
            await queue.task_done(event)

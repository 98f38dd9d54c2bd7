"""RedisQueue on a real redis-server: per-chat order across processes, no head-of-line blocking,
hand-back, dedupe, fencing, and keys that do not grow.

Two RedisQueue instances on one server stand for two worker processes.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis

from tests.helpers import eventually, make_event
from tgs3bot.errors import LeaseLost
from tgs3bot.events import to_json
from tgs3bot.lease import PollerLease
from tgs3bot.queues.redis import RedisQueue
from tgs3bot.redis_client import text

DEADLINE_S = 30.0  # generous: the machine may be busy


@dataclass
class Handling:
    """What worker coroutines saw: the update ids per chat in order, and any overlap within a chat."""

    expected: int
    by_chat: defaultdict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    in_progress: set[int] = field(default_factory=set)
    overlaps: list[int] = field(default_factory=list)
    finished: int = 0
    all_done: asyncio.Event = field(default_factory=asyncio.Event)

    async def work(self, queue: RedisQueue) -> None:
        """A worker: take, handle (yielding a little so others interleave), finish; forever."""
        while True:
            event = await queue.get()
            if event.chat_id in self.in_progress:
                self.overlaps.append(event.update_id)
            self.in_progress.add(event.chat_id)
            for _ in range(3):
                await asyncio.sleep(0)
            self.in_progress.discard(event.chat_id)
            self.by_chat[event.chat_id].append(event.update_id)
            await queue.task_done(event)
            self.finished += 1
            if self.finished >= self.expected:
                self.all_done.set()


async def test_two_processes_handle_every_event_once_in_chat_order(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """40 events over 10 chats, taken by workers of two queues, are each handled once, in order per chat."""
    events = [make_event(n, chat_id=n % 10) for n in range(40)]
    handling = Handling(expected=40)
    async with (
        RedisQueue(redis_url, queue_size=100) as one,
        RedisQueue(redis_url, queue_size=100) as other,
    ):
        workers = [asyncio.create_task(handling.work(q)) for q in (one, other) for _ in range(3)]
        for start in range(0, 40, 8):
            await one.put_batch(events[start : start + 8])
        async with asyncio.timeout(DEADLINE_S):
            await handling.all_done.wait()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        assert handling.overlaps == []
        assert dict(handling.by_chat) == {chat: list(range(chat, 40, 10)) for chat in range(10)}
        assert one.unfinished() == other.unfinished() == []
    await assert_nothing_left(raw)


async def assert_nothing_left(raw: aioredis.Redis) -> None:
    """Only bounded keys remain once every event is done: no lanes, no turns, nothing admitted."""
    keys = [text(key) for key in await raw.keys("tgs3bot:*")]
    assert [k for k in keys if k.startswith(("tgs3bot:lane:", "tgs3bot:active"))] == []
    streams = ("tgs3bot:ready:telegram", "tgs3bot:ready:vk", "tgs3bot:ready")  # the last: older versions'
    assert [await raw.xlen(stream) for stream in streams] == [0, 0, 0]
    assert await raw.mget("tgs3bot:admitted", "tgs3bot:queued") == ["0", "0"]
    for key in keys:
        if key.startswith("tgs3bot:seen:"):
            assert await raw.ttl(key) > 0
    assert {k for k in keys if not k.startswith("tgs3bot:seen:")} <= {
        *streams,
        "tgs3bot:admitted",
        "tgs3bot:queued",
        "tgs3bot:room",
    }


async def test_a_busy_chat_does_not_keep_other_chats_out(redis_url: str) -> None:
    """One chat with 50 events counts for its share only, so another chat's event gets in and out first."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await queue.put_batch([make_event(n, chat_id=1) for n in range(50)])
        assert await queue.counts() == (queue.share, 49) == (1, 49)  # (admitted, backlog)
        assert await asyncio.wait_for(queue.wait_for_room(), DEADLINE_S) == 9
        await queue.put_batch([make_event(100, chat_id=2)])
        busy = await asyncio.wait_for(queue.get(), DEADLINE_S)
        other = await asyncio.wait_for(queue.get(), DEADLINE_S)
        assert (busy.update_id, other.update_id) == (0, 100)
        assert await queue.counts() == (2, 49)
        await queue.task_done(other)
        await queue.task_done(busy)
        assert (await asyncio.wait_for(queue.get(), DEADLINE_S)).update_id == 1


async def test_wait_for_room_waits_until_an_event_is_done(redis_url: str) -> None:
    """With queue_size events admitted, wait_for_room returns (the room) only after one is done."""
    async with RedisQueue(redis_url, queue_size=2) as queue:
        await queue.put_batch([make_event(1, chat_id=1), make_event(2, chat_id=2)])
        waiting = asyncio.create_task(queue.wait_for_room())
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done
        await queue.task_done(await queue.get())
        assert await asyncio.wait_for(waiting, DEADLINE_S) == 1
        assert await queue.counts() == (1, 0)


async def test_room_wakes_every_platforms_poller_at_once(redis_url: str, raw: aioredis.Redis) -> None:
    """Telegram's and VK's pollers both waiting on a full queue are both woken by the done that
    makes room, not one of them only: the other would sleep through its read (BLOCK_CAP_S) and,
    finding the queue full again by then, miss the room altogether."""
    async with RedisQueue(redis_url, queue_size=2) as queue:
        await queue.put_batch([make_event(1, chat_id=1), make_event(2, chat_id=2)])
        pollers = {asyncio.create_task(queue.wait_for_room()) for _ in ("telegram", "vk")}

        async def both_blocked() -> bool:
            return sum(c["cmd"] == "blpop" for c in await raw.client_list()) == 2

        await eventually(both_blocked, DEADLINE_S)
        await queue.task_done(await queue.get())
        woken, _ = await asyncio.wait(pollers, timeout=DEADLINE_S, return_when=asyncio.FIRST_COMPLETED)
        assert woken
        await queue.put_batch([make_event(3, chat_id=3)])  # the first poller fills the room again
        assert await asyncio.wait_for(asyncio.gather(*pollers), DEADLINE_S) == [1, 1]


async def test_wait_for_room_waits_while_the_backlog_is_at_its_limit(redis_url: str) -> None:
    """A chat whose excess reaches the backlog limit makes the poller wait though there is room."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await queue.put_batch([make_event(n, chat_id=1) for n in range(queue.backlog_limit + 1)])
        assert await queue.counts() == (1, queue.backlog_limit)
        waiting = asyncio.create_task(queue.wait_for_room())
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done
        await queue.task_done(await queue.get())
        assert await asyncio.wait_for(waiting, DEADLINE_S) == 9


async def test_leaving_hands_back_what_was_taken(redis_url: str) -> None:
    """A queue leaving with an event in progress hands it back, and another queue gets it at once."""
    async with RedisQueue(redis_url, queue_size=10) as other:  # claim_idle_s = 60: no takeover
        async with RedisQueue(redis_url, queue_size=10) as leaving:
            await leaving.put_batch([make_event(1, chat_id=1)])
            event = await asyncio.wait_for(leaving.get(), DEADLINE_S)
            waiting = asyncio.create_task(other.get())
            assert leaving.unfinished() == [event]
        assert await asyncio.wait_for(waiting, DEADLINE_S) == event
        await other.task_done(event)


async def test_drain_waits_for_what_is_held_and_hands_out_nothing_more(redis_url: str) -> None:
    """drain returns once the held event is done; after it, get hands out nothing though other chats wait."""
    async with RedisQueue(redis_url, queue_size=10) as queue, RedisQueue(redis_url, queue_size=10) as other:
        await queue.put_batch([make_event(1, chat_id=1), make_event(2, chat_id=2)])
        event = await asyncio.wait_for(queue.get(), DEADLINE_S)
        draining = asyncio.create_task(queue.drain())
        done, _ = await asyncio.wait({draining}, timeout=0.3)
        assert not done
        await queue.task_done(event)
        await asyncio.wait_for(draining, DEADLINE_S)
        late = asyncio.create_task(queue.get())
        handed_out, _ = await asyncio.wait({late}, timeout=0.3)
        assert not handed_out
        late.cancel()
        assert (await asyncio.wait_for(other.get(), DEADLINE_S)).update_id == 2


async def test_a_redelivered_update_is_queued_once(redis_url: str, raw: aioredis.Redis) -> None:
    """The same update put twice (even after it was done) is handed out once."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        event = make_event(1, chat_id=1)
        await queue.put_batch([event, event])
        await queue.put_batch([event])
        assert await raw.llen("tgs3bot:lane:1") == 1
        await queue.task_done(await asyncio.wait_for(queue.get(), DEADLINE_S))
        await queue.put_batch([event])
        assert await raw.exists("tgs3bot:lane:1") == 0
    await assert_nothing_left(raw)


async def test_a_poller_without_the_lease_cannot_enqueue(redis_url: str, raw: aioredis.Redis) -> None:
    """put_batch with a token the poller lease does not hold is refused, and queues nothing."""
    lease = PollerLease(raw, lease_s=30)
    await lease.acquire()
    async with (
        RedisQueue(redis_url, queue_size=10, lease_token=lease.token) as holder,
        RedisQueue(redis_url, queue_size=10, lease_token="stale-token") as stale,
    ):
        await holder.put_batch([make_event(1, chat_id=1)])
        with pytest.raises(LeaseLost):
            await stale.put_batch([make_event(2, chat_id=2)])
        await lease.release()
        with pytest.raises(LeaseLost):
            await holder.put_batch([make_event(3, chat_id=3)])
        assert await raw.xlen("tgs3bot:ready:telegram") == 1
        assert not await raw.exists("tgs3bot:seen:2", "tgs3bot:seen:3")


async def test_task_done_for_an_event_not_in_progress_is_refused(redis_url: str) -> None:
    """Marking an event done that this queue did not hand out is a bug and says so."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await queue.put_batch([make_event(1, chat_id=1), make_event(2, chat_id=1)])
        await asyncio.wait_for(queue.get(), DEADLINE_S)
        with pytest.raises(ValueError, match="not the one in progress"):
            await queue.task_done(make_event(2, chat_id=1))


async def test_unfinished_lists_the_held_events_in_update_order(redis_url: str) -> None:
    """unfinished lists what this queue handed out and has not finished, by update id."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await queue.put_batch([make_event(5, chat_id=1), make_event(4, chat_id=2), make_event(6, chat_id=1)])
        first = await asyncio.wait_for(queue.get(), DEADLINE_S)
        await asyncio.wait_for(queue.get(), DEADLINE_S)
        assert [e.update_id for e in queue.unfinished()] == [4, 5]
        await queue.task_done(first)
        assert [e.update_id for e in queue.unfinished()] == [4]


async def test_get_reads_the_event_from_the_turn(redis_url: str, raw: aioredis.Redis) -> None:
    """get reads the event from the turn (no LINDEX); a turn without one (older versions) reads the lane."""
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await queue.put_batch([make_event(1, chat_id=1)])
        lindex_calls = (await raw.info("commandstats")).get("cmdstat_lindex", {}).get("calls", 0)
        event = await asyncio.wait_for(queue.get(), DEADLINE_S)
        assert (await raw.info("commandstats")).get("cmdstat_lindex", {}).get("calls", 0) == lindex_calls
        await queue.task_done(event)
        await raw.rpush("tgs3bot:lane:2", to_json(make_event(2, chat_id=2)))
        await raw.sadd("tgs3bot:active", 2)
        await raw.xadd("tgs3bot:ready", {"chat": 2})  # where older versions put turns
        assert await asyncio.wait_for(queue.get(), DEADLINE_S) == make_event(2, chat_id=2)

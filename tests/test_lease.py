"""Coordination in Redis on a real redis-server: the poller lease (one poller at a time, takeover,
fenced offsets) and the key locks (one save of a key at a time across processes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tgs3bot.errors import LeaseLost
from tgs3bot.lease import PollerLease
from tgs3bot.redis_client import open_client
from tgs3bot.redis_locks import RedisKeyLocks

DEADLINE_S = 30.0  # generous: the machine may be busy


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    """Two clients on one server, one per simulated process."""
    one, other = await open_client(redis_url), await open_client(redis_url)
    yield one, other
    await one.aclose()
    await other.aclose()


async def still_waiting(task: asyncio.Task[None], for_s: float) -> bool:
    """Whether ``task`` is not done after ``for_s`` (a check that something does NOT happen)."""
    done, _ = await asyncio.wait({task}, timeout=for_s)
    return not done


async def test_only_one_poller_holds_the_lease_and_release_lets_the_standby_in(
    clients: tuple[aioredis.Redis, aioredis.Redis],
) -> None:
    """While one poller holds the lease another cannot take it; once released, the waiting one gets it."""
    holder, standby = (PollerLease(client, lease_s=30) for client in clients)
    await holder.acquire()
    assert not await standby.try_acquire()
    waiting = asyncio.create_task(standby.acquire())
    assert await still_waiting(waiting, 0.3)
    assert await holder.release()
    await asyncio.wait_for(waiting, DEADLINE_S)
    assert not await holder.try_acquire()
    assert not await holder.release()  # not its lease any more: nothing happens


async def test_a_standby_takes_over_once_the_holder_stops_renewing(
    clients: tuple[aioredis.Redis, aioredis.Redis],
) -> None:
    """A kept lease stays with its holder; when the holder dies (stops renewing), the standby takes it."""
    holder, standby = (PollerLease(client, lease_s=2) for client in clients)
    await holder.acquire()
    keeping = asyncio.create_task(holder.keep())
    waiting = asyncio.create_task(standby.acquire())
    assert await still_waiting(waiting, 3.0)  # longer than the lease: renewals keep it
    keeping.cancel()  # the holder dies
    await asyncio.wait_for(waiting, DEADLINE_S)
    assert not await holder.renew()
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(holder.keep(), DEADLINE_S)


async def test_two_processes_never_hold_one_key_at_once(
    clients: tuple[aioredis.Redis, aioredis.Redis],
) -> None:
    """Holds of one key from two processes' locks run one at a time; another key is not held up."""
    locks = [RedisKeyLocks(client, poll_s=0.01) for client in clients]
    inside: set[int] = set()
    overlaps: list[int] = []

    async def save(n: int) -> None:
        async with locks[n % 2].hold("report.pdf"):
            if inside:
                overlaps.append(n)
            inside.add(n)
            for _ in range(3):
                await asyncio.sleep(0)
            inside.discard(n)

    async with locks[0].hold("report.pdf"):
        contenders = asyncio.gather(*(save(n) for n in range(8)))
        async with asyncio.timeout(DEADLINE_S), locks[1].hold("other.pdf"):
            pass  # a different key is free while this one is held
    await asyncio.wait_for(contenders, DEADLINE_S)
    assert overlaps == []


async def test_a_hold_longer_than_the_lock_timeout_keeps_the_lock(
    clients: tuple[aioredis.Redis, aioredis.Redis],
) -> None:
    """The heartbeat keeps a long hold's lock, so another process waits for its release."""
    mine, theirs = (RedisKeyLocks(client, timeout_s=1, poll_s=0.05) for client in clients)

    async def take() -> None:
        async with theirs.hold("big.iso"):
            pass

    async with mine.hold("big.iso"):
        contender = asyncio.create_task(take())
        assert await still_waiting(contender, 2.5)  # longer than the timeout
    await asyncio.wait_for(contender, DEADLINE_S)
    assert await clients[0].exists("tgs3bot:key-lock:big.iso") == 0

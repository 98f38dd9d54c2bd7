"""Benchmark ``queue``: the update queue alone, in this process (``ChatQueue``) and in Redis
(``RedisQueue``), so that what the Redis path costs the bot per update is seen without the rest of
the bot and its noise (the ``redis`` benchmark's layouts run three processes on two cores).

The work is the text benchmark's shape: 400 chats x 10 events, polled in the batches the queue asks
for (``wait_for_room``), taken by 8 worker coroutines that yield once, as a handler would, and
finish each event (``task_done``). The figures are CPU per event: the event loop's thread of this
process (the bot's side of the queue) and, for Redis, redis-server's own (``INFO cpu``); medians
of the rounds, which alternate the two queues. ``ChatQueue`` runs with its journal in memory:
it shows the floor, not the in-process bot's SQLite journal (see ``journal``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from bench.redis_procs import RedisServer
from bench.report import median, table
from tgs3bot.events import Event, EventKind
from tgs3bot.interfaces import UpdateQueue
from tgs3bot.queues.memory import ChatQueue
from tgs3bot.queues.redis import RedisQueue

CHATS, PER_CHAT, WORKERS, QUEUE_SIZE = 400, 10, 8, 100
PLATFORMS = ("telegram",)  # as the other benchmarks' bot, which has no VK settings
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Round:
    """One queue's run: CPU of this thread and of redis-server, and wall time, in µs per event."""

    cpu_us: float
    redis_cpu_us: float
    wall_us: float


def events() -> list[Event]:
    """The work: update n comes from chat n mod 400, so each poll batch spreads over many chats."""
    return [
        Event(update_id=n, kind=EventKind.MESSAGE, chat_id=n % CHATS + 1, user_id=n % CHATS + 1,
              private=True, message_id=n, text="hello")
        for n in range(1, CHATS * PER_CHAT + 1)
    ]  # fmt: skip


async def drive(queue: UpdateQueue, work: list[Event]) -> None:
    """Poll the work in the batches the queue asks for; return once workers finished every event."""
    left, finished = len(work), asyncio.Event()

    async def worker() -> None:
        nonlocal left
        while True:
            event = await queue.get()
            await asyncio.sleep(0)  # the handler's await
            await queue.task_done(event)
            left -= 1
            if left == 0:
                finished.set()

    tasks = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    try:
        start = 0
        while start < len(work):
            limit = await queue.wait_for_room()
            await queue.put_batch(work[start : start + limit])
            start += limit
        async with asyncio.timeout(TIMEOUT_S):
            await finished.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def redis_cpu_s(client: aioredis.Redis) -> float:
    """redis-server's CPU time so far, as it reports it."""
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(run: Callable[[], Awaitable[None]], client: aioredis.Redis) -> Round:
    """One run of ``run``, with its clocks."""
    work = CHATS * PER_CHAT
    cpu, wall, server = time.thread_time(), time.perf_counter(), await redis_cpu_s(client)
    await run()
    server = await redis_cpu_s(client) - server
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return Round(1e6 * cpu / work, 1e6 * server / work, 1e6 * wall / work)


async def run(redis: RedisServer, *, rounds: int) -> dict[str, list[Round]]:
    """``rounds`` rounds of each queue, alternating; a flushed Redis for each Redis run."""
    work, results = events(), {"ChatQueue (memory journal)": [], "RedisQueue": []}

    async def in_memory() -> None:
        await drive(ChatQueue(QUEUE_SIZE), work)

    async def in_redis() -> None:
        async with RedisQueue(redis.url, queue_size=QUEUE_SIZE, platforms=PLATFORMS) as queue:
            await drive(queue, work)

    for n in range(1, rounds + 1):
        for name, once in zip(results, (in_memory, in_redis), strict=True):
            await redis.client.flushall()
            results[name].append(await measure(once, redis.client))
            got = results[name][-1]
            print(f"  round {n}  {name:<28} cpu {got.cpu_us:6.1f} µs/event  redis {got.redis_cpu_us:5.1f}")
    return results


def report(results: dict[str, list[Round]]) -> str:
    """Medians per queue."""
    header = ("queue", "rounds", "CPU µs/event (event loop)", "redis-server CPU µs/event", "wall µs/event")
    rows = [
        (name, len(runs), f"{median([r.cpu_us for r in runs]):.1f}",
         f"{median([r.redis_cpu_us for r in runs]):.1f}", f"{median([r.wall_us for r in runs]):.1f}")
        for name, runs in results.items()
    ]  # fmt: skip
    return table(header, rows)

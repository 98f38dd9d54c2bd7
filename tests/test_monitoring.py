"""/healthz per role, on real Redis: a polling ``poll``, a standby ``poll``, a ``work``; in one process.

Three apps share the test's event loop, each with its own metrics server and registry. What a
standby is doing no event announces, so those checks look again every 50 ms (``eventually``).
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FAST_BACKOFF, RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import eventually, make_event
from tgs3bot.app import App, Role
from tgs3bot.config import Settings
from tgs3bot.errors import FatalPollingError
from tgs3bot.metrics import Metrics
from tgs3bot.monitoring import Watched, read_queue_gauges, snapshot
from tgs3bot.queues import ChatQueue

DEADLINE_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def health_is(port: int, expected: tuple[int, str]) -> None:
    """Wait until /healthz on ``port`` answers ``expected``."""

    async def check() -> bool:
        try:
            return await get(port, "/healthz") == expected
        except aiohttp.ClientConnectionError:  # not listening yet
            return False

    await eventually(check, DEADLINE_S)


async def updates_counted(port: int) -> float:
    """The sum of tgs3bot_updates_total on ``port``."""
    _, text = await get(port, "/metrics")
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tgs3bot_updates_total"
    )


@pytest.fixture
async def apps(
    settings_for: Callable[..., Settings], redis_url: str
) -> AsyncIterator[Callable[[Role], tuple[App, int]]]:
    """Start apps of a role on Redis with a metrics port each; stopped after the test."""
    running: list[tuple[App, asyncio.Task[int]]] = []

    def start(role: Role) -> tuple[App, int]:
        port = free_port()
        settings = settings_for(redis_url=redis_url, redis_lease_s=2, metrics_port=port)
        app = App(settings, role=role, backoff=FAST_BACKOFF)
        running.append((app, asyncio.create_task(app.run(), name=f"app-{role}")))
        return app, port

    yield start
    for app, _ in running:
        app.request_stop()
    for _, task in running:
        assert await asyncio.wait_for(task, DEADLINE_S) == 0


async def test_healthz_per_role_polling_standby_and_working(
    apps: Callable[[Role], tuple[App, int]], telegram: FakeTelegram
) -> None:
    """``poll`` that holds the lease: polling; a second ``poll``: standby (200, says so), then polling
    once the first stops; ``work``: its workers. Each app counts only what it handled."""
    first, first_port = apps("poll")
    await health_is(first_port, (200, "ok: polling\n"))
    _, second_port = apps("poll")
    await health_is(second_port, (200, "ok: standby, waiting for the poller lease\n"))
    _, work_port = apps("work")
    await health_is(work_port, (200, "ok: 4 workers\n"))

    telegram.add_update(updates.message(1, text="/start"))
    await telegram.wait_for_text(1, "[greeting]", timeout=DEADLINE_S)

    async def counted_by_the_worker() -> bool:
        return await updates_counted(work_port) == 1

    await eventually(counted_by_the_worker, DEADLINE_S)
    assert await updates_counted(first_port) == 0  # another app's registry

    first.request_stop()
    await health_is(second_port, (200, "ok: polling\n"))


async def test_the_snapshot_says_how_tasks_ended_and_whether_redis_answers() -> None:
    """A cancelled poller, a crashed worker and a PING that fails are read as their kinds only."""
    m = Metrics()

    async def crash() -> None:
        raise RuntimeError("boom")

    async def forever() -> None:
        await asyncio.Event().wait()

    async def ping() -> None:
        raise ConnectionError("redis://:secret@redis:6379")  # texts never reach /healthz

    alive = asyncio.create_task(forever(), name="worker-0")
    dead = asyncio.create_task(crash(), name="worker-1")
    poller = asyncio.create_task(forever(), name="poller")
    poller.cancel()
    await asyncio.wait({dead, poller})
    m.watched = Watched([poller], [alive, dead], ChatQueue(10), asyncio.Event(), ping)
    try:
        seen = await snapshot(m, "run")
    finally:
        alive.cancel()
    assert seen.poller_ended == "cancelled"
    assert (seen.dead_workers, seen.workers) == (("worker-1 (RuntimeError)",), 2)
    assert seen.backend_error == "ConnectionError"
    assert not seen.stopping


async def test_queue_gauges_are_read_from_the_queue_and_unknown_when_it_cannot_say() -> None:
    """Depth and backlog come from the queue at scrape time; a queue that fails to answer gives NaN."""
    m = Metrics()
    queue = ChatQueue(10, share=1)
    await queue.put_batch([make_event(1, chat_id=7), make_event(2, chat_id=7), make_event(3, chat_id=8)])
    m.watched = Watched([], [], queue, asyncio.Event())
    await read_queue_gauges(m)
    get = m.registry.get_sample_value
    assert (get("tgs3bot_queue_depth"), get("tgs3bot_queue_backlog")) == (2, 1)  # chat 7's second spilled

    class Broken(ChatQueue):
        async def counts(self) -> tuple[int, int]:
            raise ConnectionError("redis is gone")

    m.watched = Watched([], [], Broken(10), asyncio.Event())
    await read_queue_gauges(m)
    assert math.isnan(get("tgs3bot_queue_depth") or 0)


async def test_healthz_says_the_poller_stopped_while_fatal_polling_finishes_the_work_in_hand(
    start_bot: Callable[..., Awaitable[RunningBot]], telegram: FakeTelegram
) -> None:
    """A revoked token (401 on getUpdates) stops polling; until the held transfer is done and the
    bot exits, /healthz answers 503 naming the poller's end."""
    port = free_port()
    bot = await start_bot(metrics_port=port)
    await health_is(port, (200, "ok: polling, 4 workers\n"))
    hold = asyncio.Event()
    document = telegram.add_file(b"held" * 1000, file_name="held.bin", hold=hold)
    telegram.fail("getUpdates", status=401, description="Unauthorized", times=None)  # from the next poll
    telegram.add_update(updates.message(1, document=document))  # ends the long poll in flight
    await telegram.wait_download_started(document["file_id"], timeout=DEADLINE_S)

    await health_is(port, (503, "unhealthy: the poller stopped (FatalPollingError)\n"))
    hold.set()
    with pytest.raises(FatalPollingError):
        await asyncio.wait_for(bot.task, DEADLINE_S)
    assert "[document has been saved]" in telegram.sent(1)[-1]

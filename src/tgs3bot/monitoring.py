"""The metrics server: ``/metrics`` (Prometheus) and ``/healthz``, served from the bot's event loop.

``start_monitoring`` is the first thing the app does, so its exit stack closes the server last: a
start-up failure, the polling and the shutdown are all observable. It listens on
TGS3BOT_METRICS_HOST:TGS3BOT_METRICS_PORT (127.0.0.1 by default; 0.0.0.0 in a container, where
Prometheus and a published port come from outside its loopback); unset port: no server, no metrics.

Gauges that describe the queue are read when Prometheus scrapes, from the queue itself; the
health rules are pure functions in ``health``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import structlog
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from tgs3bot import metrics
from tgs3bot.backends import Backends
from tgs3bot.config import Settings
from tgs3bot.errors import StartupError
from tgs3bot.health import Role, Snapshot, verdict
from tgs3bot.interfaces import UpdateQueue
from tgs3bot.metrics import Metrics
from tgs3bot.queues import ChatQueue

log = structlog.get_logger(__name__)

BACKEND_PROBE_TIMEOUT_S = 2.0  # a Redis that takes longer to answer a PING counts as down


@runtime_checkable
class CountedQueue(Protocol):
    """A queue that can say how full it is: (counting against the queue size, beyond it)."""

    async def counts(self) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class Watched:
    """What the app runs, as /healthz and the queue gauges see it (``watch``)."""

    pollers: Sequence[asyncio.Task[None]]
    workers: Sequence[asyncio.Task[None]]
    queue: UpdateQueue
    stopping: asyncio.Event
    ping: Callable[[], Awaitable[object]] | None = None  # the shared backend's liveness (Redis PING)


async def start_monitoring(stack: AsyncExitStack, settings: Settings, role: Role) -> Metrics | None:
    """Bind the app's metrics and serve them, closed by ``stack``; None when the port is unset.

    A port that cannot be listened on (in use, a bad host) is a ``StartupError``.
    """
    if settings.metrics_port is None:
        return None
    bound = stack.enter_context(metrics.bound(Metrics()))
    app = web.Application()
    app.router.add_get("/metrics", _metrics_handler(bound))
    app.router.add_get("/healthz", _health_handler(bound, role, settings.health_max_poll_failure_s))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    host, port = settings.metrics_host, settings.metrics_port
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        # "Address already in use"; a host name that does not resolve has a negative errno.
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
        raise StartupError(
            f"the metrics server cannot listen on {host}:{port}: {reason} "
            "(TGS3BOT_METRICS_HOST, TGS3BOT_METRICS_PORT)"
        ) from None
    log.info("metrics_server_started", host=host, port=port)
    return bound


def watch(
    pollers: Sequence[asyncio.Task[None]],
    workers: Sequence[asyncio.Task[None]],
    backends: Backends,
    stopping: asyncio.Event,
) -> None:
    """The app's tasks run: /healthz and the queue gauges watch them (nothing when metrics are off)."""
    if metrics.current() is None:
        return
    ping = None
    if backends.leases:  # Redis: imported here, as in ``backends``
        from tgs3bot.state.redis import RedisState

        if isinstance(backends.state, RedisState):
            ping = backends.state.client.ping
    metrics.watch(Watched(list(pollers), workers, backends.queue, stopping, ping))


def _metrics_handler(m: Metrics) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    expose = make_aiohttp_handler(m.registry)

    async def serve_metrics(request: web.Request) -> web.StreamResponse:
        await read_queue_gauges(m)
        return await expose(request)

    return serve_metrics


def _health_handler(
    m: Metrics, role: Role, max_poll_failure_s: float
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve_health(_request: web.Request) -> web.StreamResponse:
        answer = verdict(await snapshot(m, role), now=time.monotonic(), max_poll_failure_s=max_poll_failure_s)
        return web.Response(status=answer.status, text=answer.body())

    return serve_health


async def snapshot(m: Metrics, role: Role) -> Snapshot:
    """What the health rules look at, read from the app's tasks, its poll status and Redis."""
    watched = m.watched
    if watched is None:
        return Snapshot(role=role, started=False)
    ended = [f"{task.get_name()} ({_how_it_ended(task)})" for task in watched.workers if task.done()]
    pollers_ended = [_how_it_ended(task) for task in watched.pollers if task.done()]
    return Snapshot(
        role=role,
        stopping=watched.stopping.is_set(),
        poller_ended=pollers_ended[0] if pollers_ended else None,
        workers=len(watched.workers),
        dead_workers=tuple(ended),
        failing_since=m.polling.failing_since,
        last_failure=m.polling.last_failure,
        standby=m.polling.standby,
        backend_error=await _ping(watched.ping),
    )


def _how_it_ended(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return "returned" if error is None else type(error).__name__


async def _ping(ping: Callable[[], Awaitable[object]] | None) -> str | None:
    """None if the backend answers (or there is none to ask), else the kind of its failure."""
    if ping is None:
        return None
    try:
        async with asyncio.timeout(BACKEND_PROBE_TIMEOUT_S):
            await ping()
    except Exception as exc:  # noqa: BLE001 (any failure to answer is the answer)
        return type(exc).__name__
    return None


async def read_queue_gauges(m: Metrics) -> None:
    """Set the queue gauges from the queue (in Redis: the whole queue, shared by every process)."""
    if m.watched is None:
        return
    queue = m.watched.queue
    try:
        async with asyncio.timeout(BACKEND_PROBE_TIMEOUT_S):
            depth, backlog = await _queue_counts(queue)
    except Exception as exc:  # noqa: BLE001 (an unknown depth is NaN, and /healthz says why)
        log.warning("queue_depth_unknown", error=type(exc).__name__)
        m.queue_depth.set(float("nan"))
        m.queue_backlog.set(float("nan"))
    else:
        m.queue_depth.set(depth)
        m.queue_backlog.set(backlog)


async def _queue_counts(queue: UpdateQueue) -> tuple[int, int]:
    if isinstance(queue, CountedQueue):  # RedisQueue
        return await queue.counts()
    if isinstance(queue, ChatQueue):
        return queue.qsize(), queue.backlog
    return len(queue.unfinished()), 0

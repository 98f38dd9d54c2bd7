"""Workers: ``WorkerConfig.concurrent_workers`` coroutines that take events and run handlers.

A failing update never kills a worker: its error is logged with the update's context and the user
gets a short apology. Cancellation (shutdown) is never swallowed.

The handlers are platform-neutral: each event runs with the ``Context`` of its platform (its
client and its size limit; the storage, the state and the locks are shared), picked here by
``event.platform``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

import structlog

from tgs3bot import metrics, replies
from tgs3bot.config import WorkerConfig
from tgs3bot.context import Context
from tgs3bot.events import Event
from tgs3bot.interfaces import UpdateQueue
from tgs3bot.router import Router
from tgs3bot.utils import log_exceptions

log = structlog.get_logger(__name__)


class Worker:
    """A pool of coroutines taking events from one queue and dispatching them through a router."""

    def __init__(
        self, queue: UpdateQueue, router: Router, contexts: Mapping[str, Context], config: WorkerConfig
    ) -> None:
        self._queue = queue
        self._router = router
        self._contexts = contexts  # platform name → the Context its events run with
        self.config = config
        self._in_progress: set[Event] = set()

    def start(self) -> list[asyncio.Task[None]]:
        """Start the coroutines as named tasks; each logs an unexpected end (``log_exceptions``)."""
        run = log_exceptions(self._run)
        return [asyncio.create_task(run(), name=f"worker-{n}") for n in range(self.config.concurrent_workers)]

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            self._in_progress.add(event)
            try:
                await self.handle(event)
            finally:
                # A cancelled event is not done: it stays queued (journal, Redis) to run again.
                self._in_progress.discard(event)
            await self._queue.task_done(event)

    def in_progress(self) -> frozenset[Event]:
        """The events being handled right now."""
        return frozenset(self._in_progress)

    async def handle(self, event: Event) -> None:
        """Handle one event inside its log context; errors end here, with one outcome line."""
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(
            platform=event.platform, update_id=event.update_id, chat_id=event.chat_id, user_id=event.user_id
        ):
            ctx = self._contexts.get(event.platform)
            route, outcome, answered = "none", "ok", False
            try:
                if ctx is None:  # a platform this process lacks: its queue hands out none (a guard)
                    outcome = "platform_not_configured"
                    log.error("update_of_unconfigured_platform", served=sorted(self._contexts))
                elif await ctx.state.is_handled(event.platform, event.update_id):
                    outcome = "duplicate"  # redelivered after a crash or a restart: answered already
                else:
                    route = await self._router.dispatch(ctx, event)
                    answered = True
                    await ctx.state.mark_handled(event.platform, event.update_id)
            except Exception:
                # Not marked handled: a redelivery (after a crash) gets another chance.
                outcome = "error"
                log.exception("update_failed")
                if ctx is not None and not answered:  # an apology after the answer would contradict it
                    await _apologise(ctx, event)
            log.info(
                "update_handled",
                route=route,
                outcome=outcome,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            metrics.update_handled(route, outcome, time.perf_counter() - started)


async def _apologise(ctx: Context, event: Event) -> None:
    with contextlib.suppress(Exception):  # the failure may well be that we cannot send
        # A document's apology carries its outcome marker, for clients that wait for one.
        text = replies.apology(document=event.document is not None)
        await ctx.platform.send_text(event.chat_id, text)

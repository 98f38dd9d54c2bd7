"""The poller: the only caller of getUpdates. It queues what arrives and forgets it.

No business logic lives here. Before each poll it waits for room in the queue (backpressure); a
batch goes into the queue, which makes it durable (the journal, or Redis), before the offset
moves, so the next poll confirms to the platform only what the bot already keeps. It reacts to
each kind of failure as it deserves:

- ``RetryAfter``: wait as long as the platform asks;
- ``TransientError`` (network, timeouts, 5xx, a proxy that is down or answers an HTML page):
  jittered exponential backoff;
- ``Conflict``: another client polls the same token. An old instance may still be finishing its
  last long poll, so conflicts are retried, but after ``conflict_give_up_s`` of nothing else the
  poller gives up with ``FatalPollingError``;
- ``Unauthorized``: the token was revoked; ``FatalPollingError`` at once, naming the platform.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine
from typing import Any

import structlog

from tgs3bot import metrics
from tgs3bot.config import BackoffConfig
from tgs3bot.errors import (
    Conflict,
    FatalPollingError,
    LeaseLost,
    RetryAfter,
    TransientError,
    Unauthorized,
)
from tgs3bot.interfaces import Platform, PollerLeasing, UpdateQueue

log = structlog.get_logger(__name__)

POLL_TIMEOUT_S = 60  # the assignment's long-poll timeout
# The line the CLI prints when a platform rejects its token while polling (exit 1).
TOKEN_REVOKED = {
    "telegram": "Telegram no longer accepts the bot token",
    "vk": "VK no longer accepts the community token",
}


def token_revoked(platform: str) -> str:
    """What to say when ``platform`` no longer accepts the bot's token."""
    return TOKEN_REVOKED.get(platform, f"{platform} no longer accepts the bot's token")


class Poller:
    """Long-polls the platform and puts every event into the queue, in order."""

    def __init__(
        self,
        platform: Platform,
        queue: UpdateQueue,
        *,
        backoff: BackoffConfig | None = None,
        poll_timeout_s: int = POLL_TIMEOUT_S,
    ) -> None:
        self.platform = platform
        self._queue = queue
        self._backoff = backoff or BackoffConfig()
        self._poll_timeout_s = poll_timeout_s
        self.offset: int | None = None  # the next update id to ask for; confirms all before it
        self._failures = 0
        self._conflict_since: float | None = None

    async def run(self) -> None:
        """Poll until cancelled (the way to stop it) or until polling cannot go on."""
        structlog.contextvars.bind_contextvars(platform=self.platform.name)  # this task's lines
        log.info("poller_started", timeout_s=self._poll_timeout_s)
        while True:
            limit = await self._queue.wait_for_room()
            try:
                with metrics.poll_round_trip():
                    batch = await self.platform.get_updates(self.offset, self._poll_timeout_s, limit=limit)
            except RetryAfter as exc:
                log.warning("poll_rate_limited", retry_after_s=exc.retry_after_s)
                await asyncio.sleep(exc.retry_after_s)
                continue
            except Unauthorized as exc:
                raise FatalPollingError(token_revoked(self.platform.name)) from exc
            except Conflict:
                await self._on_conflict()
                continue
            except TransientError as exc:
                await self._on_transient(exc)
                continue
            self._on_success()
            if batch.events:
                await self._queue.put_batch(batch.events)  # durable before the offset confirms it
            if batch.next_offset is not None:
                self.offset = batch.next_offset

    async def run_leased(self, lease: PollerLeasing) -> None:
        """Poll while this process holds the lease; when it is lost, stand by until it is ours again.

        Several ``tgs3bot poll`` (or ``run``) processes may share one Redis: exactly one polls,
        the others wait in ``acquire`` and take over within the lease's time when it dies. The
        queue refuses a batch from a poller whose lease has gone (a fence), and a new holder
        starts without an offset: Telegram hands it the first unconfirmed update, and the queue
        drops any the old holder had already taken.
        """
        structlog.contextvars.bind_contextvars(platform=self.platform.name)
        try:
            while True:
                with metrics.standing_by():
                    await lease.acquire()
                self.offset = None
                try:
                    await _first_to_end(lease.keep(), self.run())
                except LeaseLost as exc:
                    log.warning("poller_lease_lost", error=str(exc))
        finally:
            await asyncio.shield(lease.release())

    async def _on_transient(self, exc: Exception) -> None:
        delay = self._backoff.delay_s(self._failures, random.random())  # noqa: S311 (jitter)
        self._failures += 1
        log.warning("poll_failed", error=str(exc), attempt=self._failures, retry_in_s=round(delay, 2))
        await asyncio.sleep(delay)

    async def _on_conflict(self) -> None:
        now = time.monotonic()
        if self._conflict_since is None:
            self._conflict_since = now
        lasted = now - self._conflict_since
        if lasted > self._backoff.conflict_give_up_s:
            raise FatalPollingError(
                "another instance is polling with the same bot token "
                f"(409 Conflict for {lasted:.0f} s); stop it or use another token"
            )
        delay = self._backoff.delay_s(self._failures, random.random())  # noqa: S311 (jitter)
        self._failures += 1
        log.warning("poll_conflict", lasted_s=round(lasted, 1), retry_in_s=round(delay, 2))
        await asyncio.sleep(delay)

    def _on_success(self) -> None:
        if self._failures:
            log.info("poll_recovered", after_failures=self._failures)
        self._failures = 0
        self._conflict_since = None


async def _first_to_end(*coros: Coroutine[Any, Any, object]) -> None:
    """Run the coroutines until one ends; cancel the others; raise what ended it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()

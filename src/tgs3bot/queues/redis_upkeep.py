"""The Redis queue's background jobs (``queues.redis``): the heartbeat of the turns a process owns,
so a live worker's long transfer is never claimed, and the claim of dead workers' turns."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from tgs3bot.queues import redis_scripts as lua
from tgs3bot.queues.redis_turns import Turns
from tgs3bot.redis_client import text
from tgs3bot.utils import log_exceptions

log = structlog.get_logger(__name__)

RunScript = Callable[..., Awaitable[Any]]  # ``RedisQueue._run``: a script by name, with its ARGV


class Upkeep:
    """Heartbeat every ``claim_idle_s / 3``, claim every ``claim_idle_s / 2``, for one process."""

    def __init__(
        self,
        client: aioredis.Redis,
        run: RunScript,
        turns: Turns,
        prefix: str,
        consumer: str,
        claim_idle_s: float,
    ) -> None:
        self.client = client
        self.run = run
        self.turns = turns
        self.prefix = prefix
        self.consumer = consumer
        self.claim_idle_s = claim_idle_s
        self.passes = 0  # claim passes run so far

    def start(self) -> list[asyncio.Task[None]]:
        """The two jobs as tasks; a bug ending one is logged, not silent."""
        every = log_exceptions(self._every)
        return [
            asyncio.create_task(every(self.claim_idle_s / 2, self.claim), name="queue-claim"),
            asyncio.create_task(every(self.claim_idle_s / 3, self.heartbeat), name="queue-heartbeat"),
        ]

    async def _every(self, interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` every ``interval_s`` until cancelled; a failed run is logged, not fatal."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except (RedisError, OSError) as exc:
                log.warning("queue_background_job_failed", job=job.__name__, error=str(exc))

    async def heartbeat(self) -> None:
        """Keep this process's turns from looking idle, so no one claims a long transfer."""
        ids = self.turns.entry_ids()
        if ids:
            lost = await self.run("heartbeat", self.consumer, *ids)
            if lost:
                log.warning("queue_turns_lost", entry_ids=[text(i) for i in lost])

    async def claim(self) -> None:
        """Take turns idle for ``claim_idle_s`` (dead workers'), only as many as workers here wait
        for (none in ``tgs3bot poll``); forget consumers idle as long that own nothing."""
        idle_ms = int(self.claim_idle_s * 1000)
        ours = set(self.turns.entry_ids())
        want, start = self.turns.waiting - len(self.turns.ready), "0-0"
        while want > 0:
            reply = await self.client.xautoclaim(
                self.prefix + "ready", lua.GROUP, self.consumer, idle_ms, start_id=start, count=want
            )
            for entry_id, fields in reply[1]:
                # None: an entry deleted while pending (never done here: turns are XACKed first).
                # Ours: a held turn whose heartbeat ran late; it is still being handled here.
                if entry_id is not None and text(entry_id) not in ours:
                    self.turns.ready.append(lua.turn_of(entry_id, fields, fresh=False))  # handed out before
                    want -= 1
            if (start := text(reply[0])) == "0-0":
                break
        await self.run("prune", idle_ms)
        self.passes += 1

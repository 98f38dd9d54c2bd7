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
        streams: list[str],
        consumer: str,
        claim_idle_s: float,
    ) -> None:
        self.client = client
        self.run = run
        self.turns = turns
        self.streams = streams  # those it reads: its platforms' (``redis_scripts.ready_key``), and ``ready``
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
        owned = [arg for turn in self.turns.owned() for arg in (turn.stream, turn.entry_id)]
        if owned:
            lost = await self.run("heartbeat", self.consumer, *owned)
            if lost:
                log.warning("queue_turns_lost", entry_ids=[text(i) for i in lost])

    async def claim(self) -> None:
        """Take turns idle for ``claim_idle_s`` (dead workers'), only as many as workers here wait
        for (none in ``tgs3bot poll``); forget consumers idle as long that own nothing."""
        idle_ms = int(self.claim_idle_s * 1000)
        want = self.turns.waiting - len(self.turns.ready)
        ours = {(turn.stream, turn.entry_id) for turn in self.turns.owned()}  # ids are per stream
        for stream in self.streams:
            want -= await self._claim(stream, idle_ms, want, ours)
        await self.run("prune", idle_ms, *self.streams)
        self.passes += 1

    async def _claim(self, stream: str, idle_ms: int, want: int, ours: set[tuple[str, str]]) -> int:
        """Claim up to ``want`` idle turns of ``stream`` that are not ``ours``; how many were taken."""
        start, taken = "0-0", 0
        while taken < want:
            reply = await self.client.xautoclaim(
                stream, lua.GROUP, self.consumer, idle_ms, start_id=start, count=want - taken
            )
            for entry_id, fields in reply[1]:
                # None: an entry deleted while pending (never done here: turns are XACKed first).
                # Ours: a held turn whose heartbeat ran late; it is still being handled here.
                if entry_id is not None and (stream, text(entry_id)) not in ours:
                    # Handed out before: not fresh.
                    self.turns.ready.append(lua.turn_of(entry_id, fields, stream, fresh=False))
                    taken += 1
            if (start := text(reply[0])) == "0-0":
                break
        return taken

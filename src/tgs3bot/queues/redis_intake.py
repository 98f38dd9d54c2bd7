"""The poller's side of the Redis queue (``queues.redis``): a batch queued in one script, fenced by
the poller's lease, and the wait for room (the poller's backpressure)."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from tgs3bot.errors import LeaseLost
from tgs3bot.events import Event, to_json
from tgs3bot.queues.memory import BACKLOG_FACTOR, default_share
from tgs3bot.queues.redis_upkeep import RunScript
from tgs3bot.redis_client import BLOCK_CAP_S, event_keys, lease_key
from tgs3bot.state.redis import handled_prefix
from tgs3bot.state.sqlite_schema import HANDLED_RETENTION_S


class Intake:
    """The bounds of a ``RedisQueue`` (those of the in-process ``ChatQueue``), and its poller's calls."""

    def __init__(self, queue_size: int, prefix: str, lease_token: str | None) -> None:
        self.queue_size = queue_size
        self.share = default_share(queue_size)
        self.batch_floor = max(1, queue_size // 4)
        self.backlog_limit = BACKLOG_FACTOR * queue_size
        self.prefix = prefix
        self.lease_token = lease_token  # enqueue only while the poller lease holds it (None: no check)
        self._counts: tuple[int, int] | None = None  # (admitted, backlog) as the last enqueue left them

    async def put_batch(self, run: RunScript, events: Sequence[Event]) -> None:
        """Queue one poll's events (one platform's) in one script; an update queued or handled
        before is skipped, and ``LeaseLost`` raised if the queue has a lease token its platform's
        lease does not hold."""
        if not events:
            return
        lease = lease_key(events[0].platform)
        args: list[str | int | bytes] = [self.share, HANDLED_RETENTION_S, self.lease_token or "", lease]
        args.append(handled_prefix(self.prefix))
        for event in events:
            args += [*event_keys(event), to_json(event)]
        try:
            _added, admitted, queued = await run("enqueue", *args)
        except ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise LeaseLost(str(exc)) from exc
            raise
        self._counts = (int(admitted), int(queued) - int(admitted))

    async def counts(self, client: aioredis.Redis) -> tuple[int, int]:
        """(admitted, backlog): events counting against ``queue_size``, and the excess over shares."""
        admitted, queued = await client.mget([self.prefix + "admitted", self.prefix + "queued"])
        return int(admitted or 0), int(queued or 0) - int(admitted or 0)

    async def wait_for_room(self, client: aioredis.Redis) -> int:
        """Wait until a batch fits (as ``ChatQueue``: room for ``batch_floor``, backlog under its
        limit); return the room, which the poller asks for as its batch's limit.

        The counts the last ``put_batch`` returned serve once (``done`` only lowers them since);
        then a token in ``room``, which ``done`` leaves with the room only once the condition
        holds (``put_batch`` drops older ones), so the poller wakes when a batch fits.
        """
        counts, self._counts = self._counts, None
        while True:
            admitted, backlog = counts if counts is not None else await self.counts(client)
            if self.queue_size - admitted >= self.batch_floor and backlog < self.backlog_limit:
                return self.queue_size - admitted
            # The timeout only bounds the cost of a token taken by someone else.
            token = await client.blpop([self.prefix + "room"], timeout=BLOCK_CAP_S)
            if token is not None:
                return int(token[1])
            counts = None

"""How ``queues.redis`` finishes events: each ``done`` (``redis_done``) goes out in the next batch
(``redis_batch``), and a worker that has a turn ready here does not wait for it.

A steady worker's cycle is: handle the event, ``done``, take the next turn. Waiting for the
``done``'s reply leaves the worker idle for a round trip to Redis, and with every worker of a busy
process in that wait at once the process sits idle, though chats are waiting. So a ``done`` may
take a *spare* turn: when no turn is ready here, the ``done`` asks for two, the worker waits for
it and takes one, and the other stays ready. The next worker to finish finds that turn, sends its
own ``done`` (asking for one, to replace it) and goes on with the ready turn at once; the ``done``
is finished in the background, its reply's turn joining the ready ones. On the two-core
benchmark's text workload, one Redis bot went from 80 to 89 % to 85 to 96 % of the time on a
CPU, and from 1.39 to 1.52 times to 1.23 to 1.26 times the in-process bot's time
(``bench/README.md``, "A spare turn").

What that changes, and why it is safe:

- **A spare turn waits for a worker of this process**, not of any process. It exists only if the
  stream held two turns when the ``done`` ran, and a stream holds turns only while no consumer of
  any process is blocked reading it (Redis hands a new entry to a blocked reader at once): no
  worker anywhere was waiting for one at that moment. Spares are bounded by the workers: a
  ``done`` asks for one only when none is ready here, and a worker takes a ready turn each time
  it finishes. They are owned like held turns (the heartbeat keeps them; a drain or a leaving
  process hands them back).
- **``task_done`` may return before its ``done`` ran.** The event is no longer held here; its
  chat's next event comes only through that ``done`` (it passes the turn), so per-chat order
  holds. A crash before the ``done`` runs leaves the update queued and unmarked, handled again
  after the restart: the window at-least-once always had, now one batch longer. A drain, and the
  queue's close, wait for every ``done`` sent (``wait_sent``) and then hand back what they took.
- **A background ``done`` that fails** is logged with its update, and its error is raised by
  the next ``task_done`` or ``get`` (``check``), as the worker's own ``done`` failing would: the
  worker ends and the process with it, rather than going on with a broken connection. Its turn
  stays this consumer's in Redis, so another worker claims it after ``claim_idle_s``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from typing import Any

import redis.asyncio as aioredis
import structlog

from tgs3bot.events import Event
from tgs3bot.queues import redis_done
from tgs3bot.queues.redis_batch import ScriptBatch
from tgs3bot.queues.redis_turns import Turn, Turns
from tgs3bot.state.redis import handled_key

log = structlog.get_logger(__name__)


class Finisher:
    """Sends ``done`` for a consumer's turns; the turns each one takes join ``turns.ready``."""

    def __init__(
        self, client: aioredis.Redis, settings: redis_done.DoneSettings, turns: Turns, consumer: str
    ) -> None:
        self._settings = settings
        self._turns = turns
        self._consumer = consumer
        self._batch = ScriptBatch(client, redis_done.script(settings), self._took)
        # The stream a done tries first (its number, from 1), each in turn: no platform waits on another.
        self._first_streams = itertools.cycle(range(1, len(settings.streams) + 1))
        self._failure: Exception | None = None  # a background done's error, for the next ``check``
        self._taking: set[asyncio.Future[Any]] = set()  # dones in flight that may bring turns

    def submit(self, turn: Turn, *, marked: bool, take: int, background: bool = False) -> asyncio.Future[Any]:
        """Queue the ``done`` of a held turn (taking up to ``take`` turns, 0 for none); its reply.

        ``background``: nobody awaits the reply, so a failure is kept for ``check`` as well as logged.
        """
        event = turn.event
        assert event is not None  # held turns carry their event
        handled = handled_key(self._settings.prefix, event.platform, event.update_id) if marked else ""
        first = next(self._first_streams) if take else 0
        args = (turn.chat_id, turn.entry_id, self._consumer, turn.body, handled, first, turn.stream, take)
        future = self._batch.submit(*args)
        future.add_done_callback(functools.partial(self._finished, event, background))
        if take:
            self._taking.add(future)
        return future

    async def settle(self) -> bool:
        """Wait for the dones in flight that may bring turns; False if there were none.

        A worker that finds no turn ready waits for them before it blocks on the stream: else a
        turn one of them took could wait in ``turns.ready`` while every worker here blocks.
        """
        if not self._taking:
            return False
        await asyncio.wait(set(self._taking))
        return True

    def check(self) -> None:
        """Raise the error of a background ``done`` that failed since the last check, if any."""
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def wait_sent(self) -> None:
        """Return once every ``done`` submitted so far has its reply (and its turns are ready)."""
        await self._batch.wait_sent()

    async def close(self) -> None:
        """Wait for the ``done`` calls sent so far; give the batch's connection back."""
        await self._batch.close()

    def _took(self, reply: Any) -> None:
        """Turns a done took join the ready ones, even if the done's caller was cancelled since."""
        for turn in redis_done.taken_turns(reply, self._settings.streams):
            self._turns.add(turn)

    def _finished(self, event: Event, background: bool, future: asyncio.Future[Any]) -> None:
        """Log what went wrong with a done: a lost turn, a lane whose head was another, an error."""
        self._taking.discard(future)
        if future.cancelled():
            return
        context = {"update_id": event.update_id, "chat_id": event.chat_id}
        error = future.exception()
        if error is not None:
            if background and isinstance(error, Exception):
                log.error("queue_done_failed", error=repr(error), **context)
                self._failure = self._failure or error
            return
        outcome = redis_done.outcome(future.result())
        if outcome == -1:
            log.warning("queue_turn_lost", **context)
        elif outcome == 0:
            log.error("queue_lane_head_mismatch", **context)

"""The update queue in Redis, shared by every process of one bot (``interfaces.UpdateQueue``, SPEC §5).

``ChatQueue``'s design (a ready queue of chats, a lane of events per chat) across processes. Keys:

- ``lane:{chat}``: LIST of the chat's events (``events.to_json``) in order; the head is in
  progress, or next. Redis deletes the list when its last event is done. ``{chat}``, ``{update}``:
  ``redis_client.scoped`` (Telegram's ids bare, another platform's as ``vk:5``).
- ``ready:telegram``, ``ready:vk``: a STREAM per platform with the consumer group ``workers``: one
  entry (a *turn*: ``chat``; ``body``, the lane's head, so a get needs no LINDEX but for an older
  version's entry; ``fresh``) per chat with a lane. XREADGROUP gives a turn to one consumer; while
  it is in that consumer's pending list nobody else can take the chat: per-chat order across
  processes. Done turns are XACKed *and* XDELed. A process takes turns from the streams of the
  platforms it is configured for (``platforms``) only: a ``work`` process without VK's settings
  never takes a VK update, which waits, durable, for one that has them. Every process also reads
  ``ready``, where older versions put every platform's turns: a turn of a platform it serves is
  handled, another's handed on to its platform's stream (``release``).
- ``active``: SET of chats that have a lane (so a chat never has two turns).
- ``admitted``: Σ over lanes of min(length, share), kept under ``queue_size`` by ``wait_for_room``
  as ``ChatQueue`` bounds memory: one chat sending hundreds of files counts for ``share`` events,
  never keeping other chats out; its excess waits in its lane, durable. ``queued``: Σ of lengths.
- ``room``: LIST where ``task_done`` leaves a token (the room) per platform once a batch fits; a
  poller waiting for room blocks on it, so Telegram's and VK's both wake.
- ``seen:{update}``: set once per update for 7 days, so a redelivered update is queued once.

Why this shape: a stream per chat needs one XREADGROUP over every chat's stream (unbounded key
lists) or a scan for work; plain lists with BLMOVE to a processing list record no owner, so telling
a dead worker's items from a slow one's needs a scheme of our own. A consumer group gives ownership
(the pending list), idle times (XAUTOCLAIM takes a dead worker's turns after ``claim_idle_s``) and
blocking reads; the lanes hold the events (a turn a copy of the head), so one turn per chat is enough.

Every change to more than one key is a Lua script (``redis_scripts``): enqueue (fenced by the
poller lease's token), done, hand back, heartbeat, consumer pruning. At least once: a turn is
acknowledged only once its event is done; one lost by a ``get`` cancelled mid-read stays in this
consumer's pending list, and XAUTOCLAIM hands it out again after ``claim_idle_s``.

Round trips (each costs the bot 0.05 to 0.1 ms of CPU): a steady worker's event needs only its
``done`` (built per queue: ``redis_done``; sent with other workers' in one write: ``redis_batch``),
which writes the handled mark ``RedisState`` left to it and takes the next turn, with the chat's
greeting and dialog, for that worker; a first delivery skips the handled lookup. Why that is safe
under crashes and redelivery: ``redis_turns``. A ``done`` may take a spare turn too, and a worker
that finds one ready goes on without waiting for its own ``done``: ``redis_finish``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any, Self

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from tgs3bot.events import Event, from_json
from tgs3bot.queues import redis_done
from tgs3bot.queues import redis_scripts as lua
from tgs3bot.queues.redis_finish import Finisher
from tgs3bot.queues.redis_intake import Intake
from tgs3bot.queues.redis_turns import Turn, Turns
from tgs3bot.queues.redis_upkeep import Upkeep
from tgs3bot.redis_client import event_keys, open_client, text, unscoped
from tgs3bot.state.redis import dialogs_key, greeted_key
from tgs3bot.state.sqlite_schema import HANDLED_RETENTION_S

log = structlog.get_logger(__name__)

MAX_BLOCK_S = 1.0  # XREADGROUP's BLOCK: how soon a waiting get sees claimed turns or a drain


class RedisQueue:
    """The update queue in Redis: ``async with RedisQueue(url, queue_size=100) as queue: ...``."""

    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        *,
        queue_size: int,
        claim_idle_s: float = 60,
        prefix: str = "tgs3bot:",
        consumer: str | None = None,
        lease_token: str | None = None,
        max_connections: int = 100,
        platforms: Sequence[str] = ("telegram", "vk"),
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if not platforms:
            raise ValueError("platforms must name at least one platform")
        self._intake = Intake(queue_size, prefix, lease_token)  # the poller's side
        self.queue_size, self.share = queue_size, self._intake.share  # ChatQueue's bounds
        self.batch_floor, self.backlog_limit = self._intake.batch_floor, self._intake.backlog_limit
        self.claim_idle_s = claim_idle_s
        self.prefix = prefix
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.max_connections = max_connections  # each waiting get holds one: ≥ workers + a few
        self.platforms = frozenset(platforms)  # whose turns this process takes
        self.streams = [lua.ready_key(prefix, platform) for platform in sorted(self.platforms)]
        self.read_streams = [*self.streams, prefix + lua.LEGACY_READY]  # gets and claims read these
        self._source = url_or_client
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self.turns = Turns()  # what this process owns; RedisState asks it about held updates
        self._draining = False
        self._upkeep: Upkeep | None = None
        self._finisher: Finisher | None = None  # sends ``done`` calls (``redis_finish``)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def client(self) -> aioredis.Redis:
        """The open client (RuntimeError outside ``async with``)."""
        if self._client is None:
            raise RuntimeError("RedisQueue is used outside `async with`")
        return self._client

    async def __aenter__(self) -> Self:
        """Connect (if given a URL), create the consumer group, start the claim and heartbeat tasks."""
        if isinstance(self._source, str):
            self._client = await open_client(self._source, max_connections=self.max_connections)
        else:
            self._client = self._source
        client = self._client
        self._scripts = {name: client.register_script(source) for name, source in lua.SCRIPTS.items()}
        self._finisher = Finisher(client, self._done_settings(), self.turns, self.consumer)
        for stream in self.read_streams:
            try:
                await client.xgroup_create(stream, lua.GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._upkeep = Upkeep(
            client, self._run, self.turns, self.read_streams, self.consumer, self.claim_idle_s
        )
        self._tasks = self._upkeep.start()
        return self

    def _done_settings(self) -> redis_done.DoneSettings:
        """What this queue's ``done`` script is built with (the same for every process alike)."""
        bounds = (self.share, HANDLED_RETENTION_S, self.queue_size, self.batch_floor, self.backlog_limit)
        keys = (greeted_key(self.prefix), dialogs_key(self.prefix))
        return redis_done.DoneSettings(self.prefix, *bounds, *keys, self.streams)

    @property
    def claim_passes(self) -> int:
        """XAUTOCLAIM passes run so far (for monitoring and tests)."""
        return 0 if self._upkeep is None else self._upkeep.passes

    async def __aexit__(self, *exc_info: object) -> None:
        """Hand back every turn this process owns, so another process takes it at once; close.

        A held event whose handled mark was left to ``done`` was handled: it is finished instead.
        """
        self._draining, self.turns.carrying = True, False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        finisher = self._done_sender()
        await finisher.wait_sent()  # dones sent in the background may still bring turns
        marks = set(self.turns.marks)
        turns = self.turns.take_all()
        try:
            for turn in turns:
                if turn.event is not None and event_keys(turn.event)[0] in marks:
                    await finisher.submit(turn, marked=True, take=0)
                else:
                    await self._release(turn)
        finally:
            await finisher.close()  # after those of workers cancelled while waiting
            if isinstance(self._source, str) and self._client is not None:
                await self._client.aclose()
            self._client = None
        if turns:
            log.info("queue_handed_back", turns=len(turns))

    async def _run(self, script: str, *args: str | int | bytes) -> Any:
        """Run one of the ``redis_scripts`` with the prefix and ``args`` as ARGV."""
        client = self.client  # first: the clear error outside `async with`
        return await self._scripts[script](args=[self.prefix, *args], client=client)

    async def put_batch(self, events: Sequence[Event]) -> None:
        """Queue one poll's events in one script (``redis_intake``)."""
        await self._intake.put_batch(self._run, events)

    async def counts(self) -> tuple[int, int]:
        """(admitted, backlog): events counting against ``queue_size``, and the excess over shares."""
        return await self._intake.counts(self.client)

    async def wait_for_room(self) -> int:
        """Wait until a batch fits; return the room (``redis_intake``)."""
        return await self._intake.wait_for_room(self.client)

    async def get(self) -> Event:
        """The head event of the next chat whose turn comes; the chat is this process's until done.

        After ``drain`` it hands out nothing and waits until cancelled.
        """
        ready, finisher = self.turns.ready, self._done_sender()
        while True:
            finisher.check()  # a done sent in the background failed: end as its worker would
            if self._draining:
                await asyncio.Event().wait()  # forever: the app cancels the workers
            if not ready and await finisher.settle():
                continue  # the dones in flight may have brought a turn
            self.turns.waiting += 1  # claims are made for waiting workers only
            try:
                turn = ready.popleft() if ready else await self._read_turn()
            finally:
                self.turns.waiting -= 1
            if turn is None:
                continue
            try:
                event = await self._open(turn)
            except asyncio.CancelledError:
                ready.appendleft(turn)  # still ours: the next get hands it out
                raise
            if event is not None:
                return event

    async def _read_turn(self) -> Turn | None:
        """A new turn from this process's streams, or None if none came within the block time.

        COUNT is per stream: turns from a second stream are owned too, and wait in ``turns.ready``.
        """
        block_ms = max(10, int(min(MAX_BLOCK_S, self.claim_idle_s / 2) * 1000))  # BLOCK 0: forever
        streams: dict[KeyT, StreamIdT] = dict.fromkeys(self.read_streams, ">")
        reply: Any = await self.client.xreadgroup(lua.GROUP, self.consumer, streams, count=1, block=block_ms)
        turns = lua.new_turns(reply)
        self.turns.ready.extend(turns[1:])
        return turns[0] if turns else None

    async def _open(self, turn: Turn) -> Event | None:
        """Hold the turn with its head event; None if there is nothing to hand out here."""
        # A turn of another platform (from ``ready``, an older version's) goes to its own stream.
        theirs = unscoped(turn.chat_id)[0] not in self.platforms
        body = "" if theirs else turn.body or await self.client.lindex(f"{self.prefix}lane:{turn.chat_id}", 0)
        if not body or self._draining:  # an empty lane, or a drain started meanwhile
            await self._release(turn)
            return None
        event = from_json(body)
        self.turns.hold(turn.with_event(text(body), event))
        return event

    async def _release(self, turn: Turn) -> None:
        """Hand the turn back untouched (its chat's next turn goes to its platform's stream)."""
        await self._run("release", turn.stream, turn.chat_id, turn.entry_id, self.consumer)

    async def task_done(self, event: Event) -> None:
        """Finish the chat's head event (with its handled mark, if left to the queue), give the
        chat its next turn if more events wait, and take the next turn for this worker.

        With a turn ready here, the ``done`` goes out in the background (``redis_finish``).
        """
        finisher = self._done_sender()
        finisher.check()
        turn = self.turns.held.get(event_keys(event)[1])
        if turn is None or turn.event is None or turn.event.update_id != event.update_id:
            raise ValueError(f"update {event.update_id} is not the one in progress for its chat")
        spare = bool(self.turns.ready) and not self._draining
        take = 0 if self._draining else 1 if spare else 2
        done = finisher.submit(turn, marked=self.turns.marked(event), take=take, background=spare)
        self.turns.finished(turn)
        if spare:
            return
        await done
        if self._draining:  # began meanwhile: a turn just taken goes back at once
            await self._release_ready()

    def _done_sender(self) -> Finisher:
        """The open queue's ``Finisher`` (RuntimeError outside ``async with``)."""
        if self._finisher is None:
            raise RuntimeError("RedisQueue is used outside `async with`")
        return self._finisher

    async def drain(self) -> None:
        """Stop handing out events; return once every event this process took is done.

        Turns owned and not handed out yet go back to the stream at once; handled marks are
        written at once from now on.
        """
        self._draining, self.turns.carrying = True, False
        await self._release_ready()
        await self.turns.idle.wait()
        await self._done_sender().wait_sent()  # those sent in the background may have taken turns
        await self._release_ready()

    async def _release_ready(self) -> None:
        ready = self.turns.ready
        while ready:
            await self._release(ready.popleft())

    def unfinished(self) -> list[Event]:
        """The events this process took and has not finished, ordered by update id."""
        return self.turns.unfinished()

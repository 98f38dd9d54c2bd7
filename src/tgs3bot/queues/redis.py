"""The update queue in Redis, shared by every process of one bot (``interfaces.UpdateQueue``, SPEC §5).

``ChatQueue``'s design (a ready queue of chats, a lane of events per chat) across processes. Keys:

- ``lane:{chat}``: LIST of the chat's events (``events.to_json``) in order; the head is in
  progress, or next. Redis deletes the list when its last event is done. ``{chat}``, ``{update}``:
  ``redis_client.scoped`` (Telegram's ids bare, another platform's as ``vk:5``).
- ``ready``: STREAM with the consumer group ``workers``: one entry (a *turn*: ``chat``; ``body``,
  the lane's head, so a get needs no LINDEX but for an older version's entry; ``fresh``) per chat
  with a lane. XREADGROUP gives a turn to one consumer; while it is in that consumer's pending
  list nobody else can take the chat: per-chat order across processes. Done turns are XACKed
  *and* XDELed.
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

Round trips (each costs the bot ~0.1 ms of CPU): a steady worker's event needs only its ``done``
(sent with other workers' in one pipeline), which writes the handled mark ``RedisState`` left to
it and takes the next turn, with the chat's greeting and dialog, for that worker; a first
delivery skips the handled lookup. Why that is safe under crashes and redelivery: ``redis_turns``.
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

from tgs3bot.errors import LeaseLost
from tgs3bot.events import Event, from_json, to_json
from tgs3bot.queues import redis_scripts as lua
from tgs3bot.queues.memory import BACKLOG_FACTOR, default_share
from tgs3bot.queues.redis_batch import ScriptBatch
from tgs3bot.queues.redis_turns import Turn, Turns
from tgs3bot.queues.redis_upkeep import Upkeep
from tgs3bot.redis_client import BLOCK_CAP_S, event_keys, lease_key, open_client, text
from tgs3bot.state.redis import dialogs_key, greeted_key, handled_key
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
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self.share = default_share(queue_size)  # the same bounds as the in-process ChatQueue
        self.batch_floor = max(1, queue_size // 4)
        self.backlog_limit = BACKLOG_FACTOR * queue_size
        self.claim_idle_s = claim_idle_s
        self.prefix = prefix
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.lease_token = lease_token  # enqueue only while the poller lease holds it (None: no check)
        self.max_connections = max_connections  # each waiting get holds one: ≥ workers + a few
        self._source = url_or_client
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self.turns = Turns()  # what this process owns; RedisState asks it about held updates
        self._counts: tuple[int, int] | None = None  # (admitted, backlog) as the last enqueue left them
        self._draining = False
        self._upkeep: Upkeep | None = None
        self._dones: ScriptBatch | None = None  # ``done`` calls, sent together (``redis_batch``)
        room_rule = (queue_size, self.batch_floor, self.backlog_limit)
        chat_keys = (greeted_key(prefix), dialogs_key(prefix))
        self._done_settings = (self.share, HANDLED_RETENTION_S, *room_rule, *chat_keys)
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
        # A turn a done took joins the ready ones, even if the done's caller was cancelled since.
        self._dones = ScriptBatch(client, lua.DONE_LUA, lambda reply: self.turns.add(lua.taken_turn(reply)))
        try:
            await client.xgroup_create(self.prefix + "ready", lua.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._upkeep = Upkeep(client, self._run, self.turns, self.prefix, self.consumer, self.claim_idle_s)
        self._tasks = self._upkeep.start()
        return self

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
        marks = set(self.turns.marks)
        turns = self.turns.take_all()
        try:
            for turn in turns:
                if turn.event is not None and event_keys(turn.event)[0] in marks:
                    await self._done(turn, marked=True, take=False)
                else:
                    await self._run("release", turn.chat_id, turn.entry_id, self.consumer)
            if self._dones is not None:
                await self._dones.wait_sent()  # those of workers cancelled while waiting
        finally:
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
        """Queue one poll's events (one platform's) in one script; an update queued or handled
        before is skipped, and ``LeaseLost`` raised if the queue has a lease token its platform's
        lease does not hold."""
        if not events:
            return
        lease = lease_key(events[0].platform)
        args: list[str | int | bytes] = [self.share, HANDLED_RETENTION_S, self.lease_token or "", lease]
        for event in events:
            handled = handled_key(self.prefix, event.platform, event.update_id)
            args += [*event_keys(event), to_json(event), handled]
        try:
            _added, admitted, queued = await self._run("enqueue", *args)
        except ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise LeaseLost(str(exc)) from exc
            raise
        self._counts = (int(admitted), int(queued) - int(admitted))

    async def counts(self) -> tuple[int, int]:
        """(admitted, backlog): events counting against ``queue_size``, and the excess over shares."""
        admitted, queued = await self.client.mget([self.prefix + "admitted", self.prefix + "queued"])
        return int(admitted or 0), int(queued or 0) - int(admitted or 0)

    async def wait_for_room(self) -> int:
        """Wait until a batch fits (as ``ChatQueue``: room for ``batch_floor``, backlog under its
        limit); return the room, which the poller asks for as its batch's limit.

        The counts the last ``put_batch`` returned serve once (``done`` only lowers them since);
        then a token in ``room``, which ``done`` leaves with the room only once the condition
        holds (``put_batch`` drops older ones), so the poller wakes when a batch fits.
        """
        counts, self._counts = self._counts, None
        while True:
            admitted, backlog = counts if counts is not None else await self.counts()
            if self.queue_size - admitted >= self.batch_floor and backlog < self.backlog_limit:
                return self.queue_size - admitted
            # The timeout only bounds the cost of a token taken by someone else.
            token = await self.client.blpop([self.prefix + "room"], timeout=BLOCK_CAP_S)
            if token is not None:
                return int(token[1])
            counts = None

    async def get(self) -> Event:
        """The head event of the next chat whose turn comes; the chat is this process's until done.

        After ``drain`` it hands out nothing and waits until cancelled.
        """
        ready = self.turns.ready
        while True:
            if self._draining:
                await asyncio.Event().wait()  # forever: the app cancels the workers
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
        """A new turn from the stream, or None if none came within the block time."""
        block_ms = max(10, int(min(MAX_BLOCK_S, self.claim_idle_s / 2) * 1000))  # BLOCK 0: forever
        streams: dict[KeyT, StreamIdT] = {self.prefix + "ready": ">"}
        reply: Any = await self.client.xreadgroup(lua.GROUP, self.consumer, streams, count=1, block=block_ms)
        return lua.first_turn(reply)

    async def _open(self, turn: Turn) -> Event | None:
        """Hold the turn with its head event; None if there is nothing to hand out."""
        body = turn.body or await self.client.lindex(f"{self.prefix}lane:{turn.chat_id}", 0)
        if not body or self._draining:  # an empty lane, or a drain started meanwhile
            await self._run("release", turn.chat_id, turn.entry_id, self.consumer)
            return None
        event = from_json(body)
        self.turns.hold(Turn(turn.entry_id, turn.chat_id, text(body), turn.fresh, event, turn.chat_state))
        return event

    async def task_done(self, event: Event) -> None:
        """Finish the chat's head event (with its handled mark, if left to the queue), give the
        chat its next turn if more events wait, and take the next turn for this worker.
        """
        turn = self.turns.held.get(event_keys(event)[1])
        if turn is None or turn.event is None or turn.event.update_id != event.update_id:
            raise ValueError(f"update {event.update_id} is not the one in progress for its chat")
        outcome = await self._done(turn, marked=self.turns.marked(event), take=not self._draining)
        self.turns.finished(turn)
        if self._draining:  # began meanwhile: a turn just taken goes back at once
            await self._release_ready()
        if outcome == -1:
            log.warning("queue_turn_lost", update_id=event.update_id, chat_id=event.chat_id)
        elif outcome == 0:
            log.error("queue_lane_head_mismatch", update_id=event.update_id, chat_id=event.chat_id)

    async def _done(self, turn: Turn, *, marked: bool, take: bool) -> int:
        """Run ``done`` for a held turn, in one pipeline with other workers' (``redis_batch``)."""
        assert turn.event is not None  # held turns carry their event
        assert self._dones is not None  # a turn is held only inside `async with`
        event = turn.event
        handled = handled_key(self.prefix, event.platform, event.update_id) if marked else ""
        args = (turn.chat_id, turn.entry_id, self.consumer, turn.body, handled, int(take))
        reply = await self._dones(self.prefix, *args, *self._done_settings)
        return int(reply[0])

    async def drain(self) -> None:
        """Stop handing out events; return once every event this process took is done.

        Turns owned and not handed out yet go back to the stream at once; handled marks are
        written at once from now on.
        """
        self._draining, self.turns.carrying = True, False
        await self._release_ready()
        await self.turns.idle.wait()

    async def _release_ready(self) -> None:
        ready = self.turns.ready
        while ready:
            turn = ready.popleft()
            await self._run("release", turn.chat_id, turn.entry_id, self.consumer)

    def unfinished(self) -> list[Event]:
        """The events this process took and has not finished, ordered by update id."""
        return self.turns.unfinished()

"""The update queue in Redis, shared by every process of one bot (``interfaces.UpdateQueue``, SPEC §5).

``ChatQueue``'s design (a ready queue of chats, a lane of events per chat) across processes. Keys:

- ``lane:{chat}``: LIST of the chat's events in order; the head is in progress, or next. Redis
  deletes the list when its last event is done. ``{chat}``, ``{update}``: ``redis_client.scoped``.
- ``ready``: STREAM with the consumer group ``workers``: one entry (a *turn*: ``chat``, and ``body``,
  the lane's head, so a get needs no LINDEX but for an older version's entry) per chat with a lane.
  XREADGROUP gives a turn to one consumer; while it is in that consumer's pending list nobody else
  can take the chat: per-chat order across processes. Done turns are XACKed *and* XDELed.
- ``active``: SET of chats that have a lane (so a chat never has two turns).
- ``admitted``: Σ over lanes of min(length, share), kept under ``queue_size`` by ``wait_for_room``
  as ``ChatQueue`` bounds memory: one chat sending hundreds of files counts for ``share`` events,
  never keeping other chats out; its excess waits in its lane, durable. ``queued``: Σ of lengths.
- ``room``: LIST where ``task_done`` leaves a token; a poller waiting for room blocks on it.
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
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError
from redis.typing import KeyT, StreamIdT

from tgs3bot.errors import LeaseLost
from tgs3bot.events import Event, from_json, to_json
from tgs3bot.queues import redis_scripts as lua
from tgs3bot.queues.memory import BACKLOG_FACTOR, default_share
from tgs3bot.redis_client import BLOCK_CAP_S, event_keys, lease_key, open_client, text
from tgs3bot.state.sqlite_schema import HANDLED_RETENTION_S
from tgs3bot.utils import log_exceptions

log = structlog.get_logger(__name__)

MAX_BLOCK_S = 1.0  # XREADGROUP's BLOCK: how soon a waiting get sees claimed turns or a drain


@dataclass(frozen=True, slots=True)
class _Turn:
    """A chat's turn this process owns: the stream entry, the head event it carries, once parsed."""

    entry_id: str
    chat_id: str  # redis_client.scoped: the platform's chat id
    body: str = ""
    event: Event | None = None


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
        self.claim_passes = 0  # XAUTOCLAIM passes run so far (for monitoring and tests)
        self._source = url_or_client
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._held: dict[str, _Turn] = {}  # chat (scoped) → the turn whose event a worker handles
        self._claimed: deque[_Turn] = deque()  # turns taken from dead consumers, handed out first
        self._idle = asyncio.Event()  # set while no event is held
        self._idle.set()
        self._draining = False
        self._waiting = 0  # get calls waiting for a turn
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
        self._scripts = {name: self._client.register_script(source) for name, source in lua.SCRIPTS.items()}
        try:
            await self._client.xgroup_create(self.prefix + "ready", lua.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        every = log_exceptions(self._every)  # a bug ending one is logged, not silent
        self._tasks = [
            asyncio.create_task(every(self.claim_idle_s / 2, self._claim), name="queue-claim"),
            asyncio.create_task(every(self.claim_idle_s / 3, self._heartbeat), name="queue-heartbeat"),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Hand back every turn this process holds, so another process takes it at once; close."""
        self._draining = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        turns = [*self._held.values(), *self._claimed]
        self._held, self._claimed = {}, deque()
        self._idle.set()
        try:
            for turn in turns:
                await self._run("release", turn.chat_id, turn.entry_id, self.consumer)
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
        """Queue one poll's events (one platform's) in one script; an update queued before is skipped,
        and ``LeaseLost`` raised if the queue has a lease token its platform's lease does not hold."""
        if not events:
            return
        lease = lease_key(events[0].platform)
        args: list[str | int | bytes] = [self.share, HANDLED_RETENTION_S, self.lease_token or "", lease]
        for event in events:
            args += [*event_keys(event), to_json(event)]
        try:
            await self._run("enqueue", *args)
        except ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise LeaseLost(str(exc)) from exc
            raise

    async def counts(self) -> tuple[int, int]:
        """(admitted, backlog): events counting against ``queue_size``, and the excess over shares."""
        admitted, queued = await self.client.mget([self.prefix + "admitted", self.prefix + "queued"])
        return int(admitted or 0), int(queued or 0) - int(admitted or 0)

    async def wait_for_room(self) -> int:
        """Wait until a batch fits (as ``ChatQueue``: room for ``batch_floor``, backlog under its
        limit); return the room, which the poller asks for as its batch's limit.
        """
        while True:
            admitted, backlog = await self.counts()
            if self.queue_size - admitted >= self.batch_floor and backlog < self.backlog_limit:
                return self.queue_size - admitted
            # The timeout only bounds the cost of a token taken by someone else.
            await self.client.blpop([self.prefix + "room"], timeout=BLOCK_CAP_S)

    async def get(self) -> Event:
        """The head event of the next chat whose turn comes; the chat is this process's until done.

        After ``drain`` it hands out nothing and waits until cancelled.
        """
        while True:
            if self._draining:
                await asyncio.Event().wait()  # forever: the app cancels the workers
            self._waiting += 1  # claims are made for waiting workers only
            try:
                turn = self._claimed.popleft() if self._claimed else await self._read_turn()
            finally:
                self._waiting -= 1
            if turn is None:
                continue
            try:
                event = await self._open(turn)
            except asyncio.CancelledError:
                self._claimed.appendleft(turn)  # still ours: the next get hands it out
                raise
            if event is not None:
                return event

    async def _read_turn(self) -> _Turn | None:
        """A new turn from the stream, or None if none came within the block time."""
        block_ms = max(10, int(min(MAX_BLOCK_S, self.claim_idle_s / 2) * 1000))  # BLOCK 0: forever
        streams: dict[KeyT, StreamIdT] = {self.prefix + "ready": ">"}
        reply: Any = await self.client.xreadgroup(lua.GROUP, self.consumer, streams, count=1, block=block_ms)
        entry = lua.first_entry(reply)
        return None if entry is None else _Turn(*entry)

    async def _open(self, turn: _Turn) -> Event | None:
        """Hold the turn with its head event; None if there is nothing to hand out."""
        body = turn.body or await self.client.lindex(f"{self.prefix}lane:{turn.chat_id}", 0)
        if not body or self._draining:  # an empty lane, or a drain started meanwhile
            await self._run("release", turn.chat_id, turn.entry_id, self.consumer)
            return None
        event = from_json(body)
        self._held[turn.chat_id] = _Turn(turn.entry_id, turn.chat_id, text(body), event)
        self._idle.clear()
        return event

    async def task_done(self, event: Event) -> None:
        """Finish the chat's head event and give the chat its next turn if more events wait."""
        turn = self._held.get(chat := event_keys(event)[1])
        if turn is None or turn.event is None or turn.event.update_id != event.update_id:
            raise ValueError(f"update {event.update_id} is not the one in progress for its chat")
        outcome = await self._run("done", chat, turn.entry_id, self.consumer, turn.body, self.share)
        if self._held.get(chat) is turn:  # not the next turn, if a worker here took it already
            del self._held[chat]
        if not self._held:
            self._idle.set()
        if outcome == -1:
            log.warning("queue_turn_lost", update_id=event.update_id, chat_id=event.chat_id)
        elif outcome == 0:
            log.error("queue_lane_head_mismatch", update_id=event.update_id, chat_id=event.chat_id)

    async def drain(self) -> None:
        """Stop handing out events; return once every event this process took is done.

        Turns claimed from dead workers and not handed out yet go back to the stream at once.
        """
        self._draining = True
        while self._claimed:
            turn = self._claimed.popleft()
            await self._run("release", turn.chat_id, turn.entry_id, self.consumer)
        await self._idle.wait()

    def unfinished(self) -> list[Event]:
        """The events this process took and has not finished, ordered by update id."""
        events = [turn.event for turn in self._held.values() if turn.event is not None]
        return sorted(events, key=lambda e: e.update_id)

    async def _every(self, interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` every ``interval_s`` until cancelled; a failed run is logged, not fatal."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except (RedisError, OSError) as exc:
                log.warning("queue_background_job_failed", job=job.__name__, error=str(exc))

    async def _heartbeat(self) -> None:
        """Keep this process's turns from looking idle, so no one claims a long transfer."""
        ids = [turn.entry_id for turn in (*self._held.values(), *self._claimed)]
        if ids:
            lost = await self._run("heartbeat", self.consumer, *ids)
            if lost:
                log.warning("queue_turns_lost", entry_ids=[text(i) for i in lost])

    async def _claim(self) -> None:
        """Take turns idle for ``claim_idle_s`` (dead workers'), only as many as workers here wait
        for (none in ``tgs3bot poll``); forget consumers idle as long that own nothing."""
        idle_ms = int(self.claim_idle_s * 1000)
        ours = {turn.entry_id for turn in (*self._held.values(), *self._claimed)}
        want, start = self._waiting - len(self._claimed), "0-0"
        while want > 0:
            reply = await self.client.xautoclaim(
                self.prefix + "ready", lua.GROUP, self.consumer, idle_ms, start_id=start, count=want
            )
            for entry_id, fields in reply[1]:
                # None: an entry deleted while pending (never done here: turns are XACKed first).
                # Ours: a held turn whose heartbeat ran late; it is still being handled here.
                if entry_id is not None and text(entry_id) not in ours:
                    self._claimed.append(_Turn(text(entry_id), lua.chat_of(fields), lua.body_of(fields)))
                    want -= 1
            if (start := text(reply[0])) == "0-0":
                break
        await self._run("prune", idle_ms)
        self.claim_passes += 1

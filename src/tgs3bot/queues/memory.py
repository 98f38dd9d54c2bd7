"""The in-process update queue: per-chat order, concurrency across chats, a bound, and a journal.

Every event is written to a ``Journal`` (the SQLite state file) before ``put_batch`` returns, and
leaves it in ``task_done``: the poller's next getUpdates, which confirms the batch to Telegram, is
sent only once the batch is on disk, so a crash loses nothing that was taken (SPEC §5). At start,
``__aenter__`` brings back what the journal still holds, in the order it was taken.

In memory, chats with work waiting sit in a ready ``asyncio.Queue``; each chat's events wait in
its own lane. A worker takes a chat from the ready queue and handles the head of its lane; until
it calls ``task_done`` the chat is out of the ready queue, so the chat's next event cannot start
early, while other chats' events are taken by the other workers.

``maxsize`` bounds the events held in memory (waiting or in progress). One chat holds at most
``share`` of them; what it sends beyond that, or what arrives while memory is full, stays in the
journal only ("spilled") and is read back, in order, as room frees up: chats that spilled first
are refilled first. So one chat forwarding hundreds of files occupies one worker and ``share``
slots, never the whole queue, and other chats' messages are still taken and answered at once.
The poller waits (``wait_for_room``) while less than half of memory is free or the spilled
backlog is at its limit.

Each poll batch costs one journal commit (an fsync), so the poller asks for a whole queue's
worth once half of it is free: what memory cannot hold yet spills and comes in as room frees up.
That halves the commits of a busy bot against asking only for the room (measured: 2 to 4 % less
time for the text benchmark, bench/README.md's ninth look). The batch is journaled outside the
queue's lock, so the workers' refills never wait for its COMMIT.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from tgs3bot.events import ChatKey, Event
from tgs3bot.interfaces import Journal
from tgs3bot.queues.journal import MemoryJournal

SHARE_DIVISOR = 10  # a chat holds at most a tenth of the queue in memory (at least one event)
BACKLOG_FACTOR = 100  # the poller waits once this many times maxsize events are spilled
# The poller polls once half the queue is free (and then asks for all of it; see the module text).
BATCH_FLOOR_DIVISOR = 2
# Spilled events are read back once a tenth of the queue is free, or at once when no chat is ready
# for a worker: refilling after every finished event would read the journal once per event.
REFILL_DIVISOR = 10


def default_share(maxsize: int) -> int:
    """The events one chat may hold in memory: a tenth of the queue, at least one."""
    return max(1, maxsize // SHARE_DIVISOR)


@dataclass(slots=True)
class _Lane:
    """One chat's events in memory, and how many more wait in the journal only."""

    events: deque[tuple[int, Event]] = field(default_factory=deque)  # (seq, event), head first
    spilled: int = 0
    last_seq: int = 0  # spilled events come after it: the newest held, or the one before the first spilled
    busy: bool = False  # its head is being handled


class ChatQueue:
    """A journaled, bounded queue handed out in order per chat (see ``interfaces.UpdateQueue``)."""

    def __init__(self, maxsize: int, journal: Journal | None = None, *, share: int | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.share = share or default_share(maxsize)
        self.backlog_limit = BACKLOG_FACTOR * maxsize
        self.batch_floor = max(1, maxsize // BATCH_FLOOR_DIVISOR)
        self.refill_floor = max(1, maxsize // REFILL_DIVISOR)
        self._journal: Journal = journal if journal is not None else MemoryJournal()
        # Chats are (platform, chat id): a VK peer and a Telegram chat of one number are two lanes.
        self._ready: asyncio.Queue[ChatKey] = asyncio.Queue()
        self._lanes: dict[ChatKey, _Lane] = {}
        self._spill_order: dict[ChatKey, None] = {}  # chats with spilled events, first spilled first
        self._count = 0  # events in memory
        self._backlog = 0  # events in the journal only
        self._lock = asyncio.Lock()  # admissions and refills, so spilled counts match the journal
        # Set and cleared as the counts change, so a waiter wakes only when its answer may differ.
        self._room = asyncio.Event()
        self._room.set()
        self._all_done = asyncio.Event()
        self._all_done.set()

    async def __aenter__(self) -> Self:
        """Take back what the journal holds from an earlier run, in the order it was taken."""
        async with self._lock:
            for seq, event in await self._journal.entries():
                self._admit(seq, event)
        self._update_waiters()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None  # what is unfinished stays in the journal for the next start

    def qsize(self) -> int:
        """Events in memory, waiting or in progress."""
        return self._count

    @property
    def backlog(self) -> int:
        """Events taken and waiting in the journal only."""
        return self._backlog

    async def put_batch(self, events: Sequence[Event]) -> None:
        """Journal the events (one transaction), then hold in memory what fits (see the module text).

        The lock is taken only once the batch is durable. A refill meanwhile reads no row of it:
        it reads a chat's spilled rows, which all come before this batch's, and no more of them
        than the chat's spilled count, which counts none of this batch yet.
        """
        added = await self._journal.append(events)
        async with self._lock:
            for seq, event in added:
                self._admit(seq, event)
        self._update_waiters()

    def _admit(self, seq: int, event: Event) -> None:
        chat = event.chat
        lane = self._lanes.get(chat)
        if lane is None:
            lane = self._lanes[chat] = _Lane()
        if lane.spilled or len(lane.events) >= self.share or self._count >= self.maxsize:
            if not lane.spilled:
                # Refills read the chat's entries after last_seq. The chat's finished entries may
                # still be in the journal (removals are written with the next batch of marks), and
                # a new lane's last_seq is 0: start right before this event, never at them.
                lane.last_seq = seq - 1
            lane.spilled += 1
            self._backlog += 1
            self._spill_order[chat] = None
            return
        self._hold(chat, lane, seq, event)

    def _hold(self, chat: ChatKey, lane: _Lane, seq: int, event: Event) -> None:
        lane.events.append((seq, event))
        lane.last_seq = seq
        self._count += 1
        if len(lane.events) == 1 and not lane.busy:
            self._ready.put_nowait(chat)

    async def wait_for_room(self) -> int:
        """Wait until half of memory is free and the spilled backlog is under its limit.

        Returns the batch the poller asks for: the whole queue's size. What fits is held in memory
        at once, the rest spills to the journal (see the module text), so a busy bot polls in
        batches as big as the queue, not per update.
        """
        while not self._has_room():
            await self._room.wait()
        return self.maxsize

    def _has_room(self) -> bool:
        return self.maxsize - self._count >= self.batch_floor and self._backlog < self.backlog_limit

    async def get(self) -> Event:
        """The head event of the next ready chat; the chat stays busy until ``task_done``."""
        chat = await self._ready.get()
        lane = self._lanes[chat]
        lane.busy = True
        return lane.events[0][1]

    async def task_done(self, event: Event) -> None:
        """Finish the chat's head event: out of the journal, and the chat's next one made ready."""
        lane = self._lanes[event.chat]
        if not lane.events or lane.events[0][1] is not event:
            raise ValueError(f"update {event.update_id} is not the one in progress for its chat")
        lane.events.popleft()
        self._count -= 1
        await self._journal.remove(event.platform, event.update_id)
        if self._spill_order and (self.maxsize - self._count >= self.refill_floor or self._ready.empty()):
            await self._refill()
        lane.busy = False  # only now: a refill or a put meanwhile must not make the chat ready twice
        if lane.events:
            self._ready.put_nowait(event.chat)
        elif not lane.spilled:
            del self._lanes[event.chat]
        self._update_waiters()

    async def _refill(self) -> None:
        """Read spilled events back from the journal while memory has room, first spilled first."""
        async with self._lock:
            for chat in list(self._spill_order):
                room = self.maxsize - self._count
                if room <= 0:
                    return
                lane = self._lanes[chat]
                if len(lane.events) > self.share // 2:
                    continue  # refilled once half its share is used: fewer, bigger reads
                want = min(self.share - len(lane.events), room, lane.spilled)
                entries = await self._journal.entries(chat, after_seq=lane.last_seq, limit=want)
                lane.spilled -= len(entries)
                self._backlog -= len(entries)
                for seq, event in entries:
                    self._hold(chat, lane, seq, event)
                if not lane.spilled or not entries:  # none found: the count was off; do not spin
                    self._backlog -= lane.spilled
                    lane.spilled = 0
                    del self._spill_order[chat]

    def _update_waiters(self) -> None:
        """Set or clear the events the poller and ``drain`` wait on (cheap: no task switch)."""
        if self._has_room():
            self._room.set()
        else:
            self._room.clear()
        if self._count == 0 and self._backlog == 0:
            self._all_done.set()
        else:
            self._all_done.clear()

    async def drain(self) -> None:
        """Wait until every event taken so far is done, spilled ones included."""
        await self._all_done.wait()

    def unfinished(self) -> list[Event]:
        """The events in memory and not yet done, in progress or waiting, in the order taken."""
        held = sorted((entry for lane in self._lanes.values() for entry in lane.events), key=lambda e: e[0])
        return [event for _, event in held]

"""The turns one process owns in the Redis queue (``queues.redis``), and what they tell the state.

A turn (an entry of its platform's ``ready:`` stream, see ``redis_scripts``) is either *ready*
(owned, its event not handed out yet: claimed from a dead worker, or taken by ``done`` for the
worker that has just finished, or as a spare: ``redis_finish``) or *held* (its event is being
handled here). ``RedisState`` asks three things about a held update, so that a steady worker
makes no round trip of its own for them.

**``first_delivery``: the handled-id lookup is skipped.** Why that is safe under crashes and
redelivery: a handled mark is written only for an update some worker took as the head of a turn
it owned. An update enters a lane once (``seen:{update}``; ``enqueue`` also skips an update
already handled) and becomes its lane's head once (a lane is FIFO). The turn made at that moment
is the only one marked fresh (by ``enqueue``, or by ``done`` right after its pop); every later
turn with the same head (``release``: a process leaving or draining; ``done`` finding another
head) is not. A stream entry is read with ``>`` by one consumer, once; after that it moves only
by XAUTOCLAIM, which never counts as fresh here. So a worker holding a fresh turn read with ``>``
is the first to hold its update, and nobody can have marked it handled. A claimed turn, or one
handed back, is looked up as before: a dead worker's handled update is not answered twice.

**``carry_mark``: the handled mark rides on ``done``,** in the script that pops the event. A crash
after the handler and before ``done`` leaves the update queued and unmarked, so it is handled
again; that window is one round trip, as it was when the mark was a SET of its own between the
handler and ``done``. A crash after ``done`` leaves it handled and gone. A mark left to ``done``
whose ``task_done`` never came (a worker cancelled in between) is written as the queue closes, by
a ``done`` of that turn; while draining (when a shutdown may cancel workers) marks are written at
once.

**``chat_state``: the chat's greeting and dialog come with the turn** that ``done`` takes (read in
the same script, when the turn becomes this process's). Only a handler of the chat's events
changes them, and those run only while their worker holds the chat's one turn; the previous
holder finished before its ``done`` passed the turn on. So from the moment a process owns the
turn until it is done, nobody else changes them, and what was read then is what a read at
handling time would give. A dialog this process changes meanwhile is noted on the turn
(``note_dialog``). A claimed turn carries no state (its dead owner may have changed it); its
reads go to Redis, as do reads for chats not held here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, replace

from tgs3bot.events import Event
from tgs3bot.redis_client import scoped
from tgs3bot.state.redis import ChatState


@dataclass(frozen=True, slots=True)
class Turn:
    """A chat's turn this process owns: the stream entry, the head event it carries, once parsed.

    ``fresh``: the turn was read as a new entry (``XREADGROUP >``) and says its head has never
    been handed out; a claimed turn never is. ``chat_state``: the chat's greeting and dialog, read
    by the ``done`` script that took the turn (None for a turn read otherwise).
    """

    entry_id: str
    chat_id: str  # redis_client.scoped: the platform's chat id, as the turn's ``chat`` field
    body: str = ""
    fresh: bool = False
    event: Event | None = None
    chat_state: ChatState | None = None
    stream: str = ""  # the stream it is an entry of (its platform's, ``redis_scripts.ready_key``)

    def with_event(self, body: str, event: Event) -> Turn:
        """The turn as a worker holds it (built directly: ``dataclasses.replace`` costs ~5 µs)."""
        return Turn(self.entry_id, self.chat_id, body, self.fresh, event, self.chat_state, self.stream)


class Turns:
    """The turns of one process: ready to hand out, held by a worker, and handled marks to carry."""

    def __init__(self) -> None:
        self.held: dict[str, Turn] = {}  # chat (scoped) → the turn whose event a worker handles
        self.ready: deque[Turn] = deque()  # owned, not handed out yet; handed out first
        self.marks: set[str] = set()  # updates (scoped) whose handled mark ``done`` is to write
        self.idle = asyncio.Event()  # set while no event is held
        self.idle.set()
        self.carrying = True  # False while draining: marks are written at once
        self.waiting = 0  # get calls waiting for a turn (claims are made for them only)

    def hold(self, turn: Turn) -> None:
        """A worker takes the turn's event."""
        self.held[turn.chat_id] = turn
        self.idle.clear()

    def finished(self, turn: Turn) -> None:
        """The turn's event is done (or handed back); forget it and its mark."""
        if turn.event is not None:
            self.marks.discard(scoped(turn.event.platform, turn.event.update_id))
        if self.held.get(turn.chat_id) is turn:  # not the next turn, if a worker here took it already
            del self.held[turn.chat_id]
        if not self.held:
            self.idle.set()

    def add(self, turn: Turn | None) -> None:
        """A turn taken for this process (by a ``done``), if any, is ready to hand out."""
        if turn is not None:
            self.ready.append(turn)

    def take_all(self) -> list[Turn]:
        """Every turn owned (held, then ready), now no longer this process's to hand out."""
        turns = self.owned()
        self.held, self.ready = {}, deque()
        self.idle.set()
        return turns

    def owned(self) -> list[Turn]:
        """Every turn owned, held or ready (for the heartbeat and the claim pass)."""
        return [*self.held.values(), *self.ready]

    def holding(self, platform: str, update_id: int) -> Turn | None:
        """The held turn whose event is that update (of that platform), if any."""
        for turn in self.held.values():
            event = turn.event
            if event is not None and event.update_id == update_id and event.platform == platform:
                return turn
        return None

    def marked(self, event: Event) -> bool:
        """Whether the event's handled mark was left to its ``done``."""
        return scoped(event.platform, event.update_id) in self.marks

    def first_delivery(self, platform: str, update_id: int) -> bool:
        """Whether the update is held here from a turn whose head was never handed out before."""
        turn = self.holding(platform, update_id)
        return turn is not None and turn.fresh

    def carry_mark(self, platform: str, update_id: int) -> bool:
        """Leave the update's handled mark to ``done`` if the update is held here (not while draining).

        While draining (a shutdown that may cancel the worker before its ``task_done``) the mark
        is written at once instead, so it never waits on a ``done`` that will not come.
        """
        if not self.carrying or self.holding(platform, update_id) is None:
            return False
        self.marks.add(scoped(platform, update_id))
        return True

    def chat_state(self, platform: str, chat_id: int) -> ChatState | None:
        """The held chat's greeting and dialog, if they came with its turn."""
        turn = self.held.get(scoped(platform, chat_id))
        return None if turn is None else turn.chat_state

    def note_dialog(self, platform: str, chat_id: int, dialog: str | None) -> None:
        """The held chat's dialog changed (written to Redis): later reads in this turn see it."""
        chat = scoped(platform, chat_id)
        turn = self.held.get(chat)
        if turn is not None and turn.chat_state is not None:
            self.held[chat] = replace(turn, chat_state=ChatState(turn.chat_state.greeted, dialog))

    def unfinished(self) -> list[Event]:
        """The events held, ordered by update id."""
        events = [turn.event for turn in self.held.values() if turn.event is not None]
        return sorted(events, key=lambda e: e.update_id)

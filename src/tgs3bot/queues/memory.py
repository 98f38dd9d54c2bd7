"""The in-process update queue: per-chat order, concurrency across chats, one bound for all.

Chats with work waiting sit in a ready ``asyncio.Queue``; each chat's events wait in its own lane.
A worker takes a chat from the ready queue and handles the head of its lane; until it calls
``task_done`` the chat is out of the ready queue, so the chat's next event cannot start early,
while other chats' events are taken by the other workers. One chat that sends many slow files
therefore occupies one worker, never all of them (no head-of-line blocking).

``maxsize`` bounds every event put and not yet done (waiting or in progress): a full queue makes
``put`` wait, which is the poller's backpressure.
"""

from __future__ import annotations

import asyncio
from collections import deque

from tgs3bot.events import Event


class ChatQueue:
    """A bounded queue of events, handed out in order per chat (see ``interfaces.UpdateQueue``)."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._slots = asyncio.Semaphore(maxsize)
        self._ready: asyncio.Queue[int] = asyncio.Queue()
        self._lanes: dict[int, deque[Event]] = {}
        self._count = 0
        self._all_done = asyncio.Event()
        self._all_done.set()

    def qsize(self) -> int:
        """Events put and not yet done."""
        return self._count

    async def put(self, event: Event) -> None:
        """Add an event at the end of its chat's lane; wait while ``maxsize`` events are unfinished."""
        await self._slots.acquire()
        self._count += 1
        self._all_done.clear()
        lane = self._lanes.get(event.chat_id)
        if lane is None:
            self._lanes[event.chat_id] = deque([event])
            self._ready.put_nowait(event.chat_id)
        else:
            lane.append(event)  # the chat is busy or already ready; its turn comes in order

    async def get(self) -> Event:
        """The head event of the next ready chat; the chat stays busy until ``task_done``."""
        chat_id = await self._ready.get()
        return self._lanes[chat_id][0]

    def task_done(self, event: Event) -> None:
        """Finish the chat's head event and make the chat ready again if more are waiting."""
        lane = self._lanes[event.chat_id]
        if lane[0] is not event:
            raise ValueError(f"update {event.update_id} is not the one in progress for its chat")
        lane.popleft()
        if lane:
            self._ready.put_nowait(event.chat_id)
        else:
            del self._lanes[event.chat_id]
        self._count -= 1
        self._slots.release()
        if self._count == 0:
            self._all_done.set()

    async def join(self) -> None:
        """Wait until every event put so far is done."""
        await self._all_done.wait()

    def unfinished(self) -> list[Event]:
        """The events put and not yet done, in progress or waiting, ordered by update id."""
        return sorted((e for lane in self._lanes.values() for e in lane), key=lambda e: e.update_id)

"""The update queue keeps each chat's order, runs chats in parallel, and bounds what it holds."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import make_event
from tgs3bot.events import Event
from tgs3bot.queues import ChatQueue


async def queue_holding(maxsize: int, *events: Event) -> ChatQueue:
    """A ChatQueue of ``maxsize`` with ``events`` put in, in order."""
    queue = ChatQueue(maxsize)
    for event in events:
        await queue.put(event)
    return queue


async def test_one_chat_is_handed_out_in_order_and_one_at_a_time() -> None:
    """A chat's next event is not handed out before its current one is done."""
    queue = await queue_holding(10, *(make_event(n, chat_id=1) for n in range(3)))
    first = await queue.get()
    assert first.update_id == 0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.05)  # chat 1 is busy; nothing else is ready
    queue.task_done(first)
    assert (await queue.get()).update_id == 1


async def test_a_busy_chat_does_not_hold_up_other_chats() -> None:
    """While one chat's event is in progress, other chats' events are handed out."""
    queue = await queue_holding(
        10, make_event(1, chat_id=1), make_event(2, chat_id=1), make_event(3, chat_id=2)
    )
    busy = await queue.get()
    other = await queue.get()
    assert (busy.chat_id, other.chat_id) == (1, 2)


async def test_put_waits_while_maxsize_events_are_unfinished() -> None:
    """A full queue makes put wait until an event is done (in-progress events count)."""
    queue = await queue_holding(2, make_event(1, chat_id=1), make_event(2, chat_id=2))
    blocked = asyncio.create_task(queue.put(make_event(3, chat_id=3)))
    taken = await queue.get()
    await asyncio.sleep(0)
    assert not blocked.done()  # taken but not done still counts
    queue.task_done(taken)
    await asyncio.wait_for(blocked, 1)
    assert queue.qsize() == 2


async def test_join_waits_for_all_and_unfinished_lists_them() -> None:
    """join returns once every event is done; unfinished lists in-progress and waiting events."""
    queue = await queue_holding(
        10, make_event(5, chat_id=1), make_event(4, chat_id=2), make_event(6, chat_id=1)
    )
    taken = await queue.get()
    assert [e.update_id for e in queue.unfinished()] == [4, 5, 6]
    joined = asyncio.create_task(queue.join())
    for _ in range(2):
        queue.task_done(taken)
        taken = await queue.get()
    assert not joined.done()
    queue.task_done(taken)
    await asyncio.wait_for(joined, 1)
    assert queue.unfinished() == []


async def test_task_done_for_an_event_not_in_progress_is_refused() -> None:
    """Marking the wrong event done is a bug and says so."""
    queue = await queue_holding(10, make_event(1, chat_id=1), make_event(2, chat_id=1))
    await queue.get()
    with pytest.raises(ValueError, match="not the one in progress"):
        queue.task_done(make_event(2, chat_id=1))

"""The in-process queue keeps each chat's order, runs chats in parallel, bounds memory, and spills."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tests.helpers import make_event
from tgs3bot.events import Event
from tgs3bot.queues import ChatQueue
from tgs3bot.queues.journal import MemoryJournal

DEADLINE_S = 60  # bounds a hang; says nothing about speed


async def queue_holding(maxsize: int, *events: Event, journal: MemoryJournal | None = None) -> ChatQueue:
    """A ChatQueue of ``maxsize`` with ``events`` put in, as one batch."""
    queue = ChatQueue(maxsize, journal)
    await queue.__aenter__()
    await queue.put_batch(events)
    return queue


async def nothing_ready(queue: ChatQueue) -> bool:
    """Whether ``get`` has nothing to hand out (it would wait)."""
    try:
        await asyncio.wait_for(queue.get(), 0.05)
    except TimeoutError:
        return True
    return False


async def handle_all(queue: ChatQueue, count: int) -> list[Event]:
    """Take and finish ``count`` events one at a time; return them in the order they were taken."""
    taken = []
    for _ in range(count):
        event = await asyncio.wait_for(queue.get(), DEADLINE_S)
        taken.append(event)
        await queue.task_done(event)
    return taken


async def test_one_chat_is_handed_out_in_order_and_one_at_a_time() -> None:
    """A chat's next event is not handed out before its current one is done."""
    queue = await queue_holding(10, *(make_event(n, chat_id=1) for n in range(3)))
    first = await queue.get()
    assert first.update_id == 0
    assert await nothing_ready(queue)  # chat 1 is busy; nothing else is ready
    await queue.task_done(first)
    assert (await queue.get()).update_id == 1


async def test_a_busy_chat_does_not_hold_up_other_chats() -> None:
    """While one chat's event is in progress, other chats' events are handed out."""
    queue = await queue_holding(
        10, make_event(1, chat_id=1), make_event(2, chat_id=1), make_event(3, chat_id=2)
    )
    busy = await queue.get()
    other = await queue.get()
    assert (busy.chat_id, other.chat_id) == (1, 2)


async def test_the_poller_waits_for_room_while_memory_is_full() -> None:
    """wait_for_room blocks while maxsize events are unfinished (in progress counts) and wakes after one."""
    queue = await queue_holding(2, make_event(1, chat_id=1), make_event(2, chat_id=2))
    waiting = asyncio.create_task(queue.wait_for_room())
    taken = await queue.get()
    await asyncio.sleep(0)
    assert not waiting.done()  # taken but not done still counts
    await queue.task_done(taken)
    await asyncio.wait_for(waiting, DEADLINE_S)


async def test_one_chat_holds_only_its_share_and_the_rest_waits_in_the_journal() -> None:
    """A chat sending 20 events into a queue of 10 takes one slot; another chat is still taken and served."""
    journal = MemoryJournal()
    queue = await queue_holding(10, *(make_event(n, chat_id=1) for n in range(1, 21)), journal=journal)
    assert (queue.share, queue.qsize(), queue.backlog) == (1, 1, 19)
    await asyncio.wait_for(queue.wait_for_room(), DEADLINE_S)  # the poller goes on polling
    busy = await queue.get()
    await queue.put_batch([make_event(100, chat_id=2)])
    assert (await asyncio.wait_for(queue.get(), DEADLINE_S)).update_id == 100
    assert len(await journal.entries()) == 21  # all of it durable, in memory or not
    assert busy.update_id == 1


async def test_spilled_events_come_back_in_order_as_the_chat_drains() -> None:
    """Every spilled event is handed out, in the chat's order, and the journal ends empty."""
    journal = MemoryJournal()
    queue = await queue_holding(10, *(make_event(n, chat_id=1) for n in range(1, 21)), journal=journal)
    await queue.put_batch([make_event(n, chat_id=1) for n in range(21, 26)])  # more while it spills
    taken = await handle_all(queue, 25)
    assert [e.update_id for e in taken] == list(range(1, 26))
    assert (queue.qsize(), queue.backlog, await journal.entries()) == (0, 0, [])


async def test_chats_spilled_for_lack_of_room_are_refilled_first_come_first_served() -> None:
    """With memory full, later chats wait in the journal and come in in the order they arrived."""
    queue = await queue_holding(2, make_event(1, chat_id=1), make_event(2, chat_id=2))
    await queue.put_batch([make_event(3, chat_id=3), make_event(4, chat_id=4)])
    assert (queue.qsize(), queue.backlog) == (2, 2)
    taken = await handle_all(queue, 4)
    assert [e.update_id for e in taken] == [1, 2, 3, 4]


async def test_a_restart_brings_back_the_journal_in_order() -> None:
    """A new queue on the same journal hands out what was unfinished, in the order it was taken."""
    journal = MemoryJournal()
    first = await queue_holding(10, *(make_event(n, chat_id=1 + n % 2) for n in range(1, 7)), journal=journal)
    done = await first.get()
    await first.task_done(done)  # update 1 finished; 2..6 were taken and not finished
    second = ChatQueue(10, journal)
    async with second:
        assert [e.update_id for e in second.unfinished()] == [2, 3]  # one per chat; the rest spilled
        drained = asyncio.create_task(second.drain())
        await asyncio.sleep(0)
        assert not drained.done()  # what came back from the journal is work to finish
        taken = await handle_all(second, 5)
        await asyncio.wait_for(drained, DEADLINE_S)
    assert sorted(e.update_id for e in taken) == [2, 3, 4, 5, 6]
    assert [e.update_id for e in taken if e.chat_id == 1] == [2, 4, 6]


async def test_a_redelivered_update_is_taken_once() -> None:
    """An update put twice (its confirmation was lost) is handed out once."""
    queue = await queue_holding(10, make_event(1), make_event(2))
    await queue.put_batch([make_event(2), make_event(3)])
    taken = await handle_all(queue, 3)
    assert [e.update_id for e in taken] == [1, 2, 3]
    assert queue.qsize() == 0


async def test_drain_waits_for_spilled_events_and_unfinished_lists_memory() -> None:
    """drain returns once every event is done, spilled ones included; unfinished lists those in memory."""
    queue = await queue_holding(
        10, make_event(5, chat_id=1), make_event(4, chat_id=2), make_event(6, chat_id=1)
    )
    assert [e.update_id for e in queue.unfinished()] == [5, 4]  # 6 waits in the journal (share 1)
    drained = asyncio.create_task(queue.drain())
    await handle_all(queue, 2)
    assert not drained.done()
    await handle_all(queue, 1)
    await asyncio.wait_for(drained, DEADLINE_S)
    assert queue.unfinished() == []


async def test_task_done_for_an_event_not_in_progress_is_refused() -> None:
    """Marking the wrong event done is a bug and says so."""
    queue = await queue_holding(10, make_event(1, chat_id=1), make_event(2, chat_id=1))
    await queue.get()
    with pytest.raises(ValueError, match="not the one in progress"):
        await queue.task_done(make_event(2, chat_id=1))


class FlushedJournal(MemoryJournal):
    """A memory journal whose removals take effect only at ``flush``, as the SQLite journal's do
    (they ride on the next batch of handled marks)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[str, int]] = []

    async def remove(self, platform: str, update_id: int) -> None:
        self.pending.append((platform, update_id))

    async def flush(self) -> None:
        for key in self.pending:
            await super().remove(*key)
        self.pending.clear()


async def test_a_chat_spilled_after_it_drained_gets_its_new_events_not_its_finished_ones() -> None:
    """A chat whose lane emptied, then sent more while memory was full, is refilled with the new
    event: its finished entries, still in the journal until the next flush, are not read back."""
    journal = FlushedJournal()
    queue = await queue_holding(2, make_event(1, chat_id=1), journal=journal)
    await handle_all(queue, 1)  # chat 1 is done with update 1; its removal is not flushed yet
    await queue.put_batch([make_event(2, chat_id=2), make_event(3, chat_id=3), make_event(4, chat_id=1)])
    assert (queue.qsize(), queue.backlog) == (2, 1)  # memory full: chat 1's update 4 spilled
    taken = await handle_all(queue, 3)
    assert [e.update_id for e in taken] == [2, 3, 4]
    assert (queue.qsize(), queue.backlog) == (0, 0)
    await journal.flush()
    assert await journal.entries() == []  # nothing left behind for the next start


async def test_once_half_is_free_the_poller_asks_for_a_whole_queue_and_what_does_not_fit_spills() -> None:
    """The batch is the queue's size, not its room (one commit per batch): memory never holds more
    than ``maxsize``, the rest waits in the journal, and all of it is handed out."""
    journal = MemoryJournal()
    queue = await queue_holding(10, *(make_event(n, chat_id=n) for n in range(1, 7)), journal=journal)
    waiting = asyncio.create_task(queue.wait_for_room())
    await asyncio.sleep(0)
    assert not waiting.done()  # 4 free: less than half
    await handle_all(queue, 1)
    assert await asyncio.wait_for(waiting, DEADLINE_S) == 10  # 5 free: it asks for 10
    await queue.put_batch([make_event(n, chat_id=n) for n in range(10, 20)])
    assert (queue.qsize(), queue.backlog) == (10, 5)
    taken = []
    for _ in range(15):
        assert queue.qsize() <= 10
        taken.extend(await handle_all(queue, 1))
    assert [e.update_id for e in taken] == [*range(2, 7), *range(10, 20)]  # spilled ones in order
    assert (queue.qsize(), queue.backlog, await journal.entries()) == (0, 0, [])


class CountedJournal(MemoryJournal):
    """A memory journal that counts its reads of one chat's entries (the queue's refills)."""

    def __init__(self) -> None:
        super().__init__()
        self.refills: list[int] = []  # entries read per refill read

    async def entries(
        self, chat: tuple[str, int] | None = None, *, after_seq: int = 0, limit: int = -1
    ) -> list[tuple[int, Event]]:
        found = await super().entries(chat, after_seq=after_seq, limit=limit)
        if chat is not None:
            self.refills.append(len(found))
        return found


async def test_spilled_events_are_read_back_a_tenth_of_the_queue_at_a_time() -> None:
    """While chats are ready for the workers, a refill waits for room for a tenth of the queue and
    reads that much at once, not one event per finished one."""
    journal = CountedJournal()
    queue = ChatQueue(40, journal, share=10)
    await queue.__aenter__()
    await queue.put_batch([make_event(n, chat_id=n) for n in range(1, 41)])  # memory full
    await queue.put_batch([make_event(100 + n, chat_id=99) for n in range(20)])
    assert (queue.qsize(), queue.backlog) == (40, 20)
    await handle_all(queue, 3)
    assert journal.refills == []  # 3 free: less than a tenth
    await handle_all(queue, 1)
    assert journal.refills == [4]
    assert (queue.qsize(), queue.backlog) == (40, 16)


async def test_a_spilled_event_is_read_back_at_once_when_no_chat_is_ready() -> None:
    """Below a tenth of free room, a refill still happens when the workers would otherwise idle."""
    queue = ChatQueue(40, MemoryJournal(), share=10)
    await queue.__aenter__()
    await queue.put_batch([make_event(n, chat_id=n) for n in range(1, 40)])
    in_progress = [await asyncio.wait_for(queue.get(), DEADLINE_S) for _ in range(39)]
    await queue.put_batch([make_event(100 + n, chat_id=99) for n in range(3)])  # 1 held, 2 spilled
    first = await asyncio.wait_for(queue.get(), DEADLINE_S)
    await queue.task_done(first)  # 1 free, nothing ready
    second = await asyncio.wait_for(queue.get(), DEADLINE_S)
    assert (first.update_id, second.update_id, len(in_progress)) == (100, 101, 39)


class HeldJournal(MemoryJournal):
    """A memory journal whose ``append`` waits for ``release``, as a batch's COMMIT does for its fsync."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.appending = asyncio.Event()

    async def append(self, events: Sequence[Event]) -> list[tuple[int, Event]]:
        self.appending.set()
        await self.release.wait()
        return await super().append(events)


async def test_a_worker_finishing_an_event_does_not_wait_for_a_batch_being_journaled() -> None:
    """A finished event's refill goes ahead while the next batch's COMMIT is still running."""
    journal = HeldJournal()
    journal.release.set()
    queue = await queue_holding(2, make_event(1, chat_id=1), make_event(2, chat_id=2), journal=journal)
    await queue.put_batch([make_event(3, chat_id=3)])  # spilled: memory is full
    journal.release.clear()
    putting = asyncio.create_task(queue.put_batch([make_event(4, chat_id=4)]))
    await asyncio.wait_for(journal.appending.wait(), DEADLINE_S)
    taken = await asyncio.wait_for(handle_all(queue, 3), DEADLINE_S)  # no wait for the COMMIT
    assert [e.update_id for e in taken] == [1, 2, 3]
    assert not putting.done()
    journal.release.set()
    await asyncio.wait_for(putting, DEADLINE_S)
    assert [e.update_id for e in await handle_all(queue, 1)] == [4]

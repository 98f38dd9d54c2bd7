"""The poller: offsets move only once the queue has the update; each failure kind has its answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager

import pytest

from tests.helpers import make_event
from tgs3bot.config import BackoffConfig
from tgs3bot.errors import Conflict, FatalPollingError, RetryAfter, TransientError, Unauthorized
from tgs3bot.events import Document, Keyboard, UpdateBatch
from tgs3bot.poller import Poller
from tgs3bot.queues import ChatQueue

FAST = BackoffConfig(initial_s=0.001, max_s=0.002, conflict_give_up_s=0.05)
DEADLINE_S = 60  # for waits on an event: it bounds a hang, it does not say how fast things happen


class ScriptedPlatform:
    """Answers getUpdates from a script of batches and errors; records the offsets asked for."""

    name = "telegram"

    def __init__(self, script: Sequence[UpdateBatch | Exception]) -> None:
        self.script = list(script)
        self.offsets: list[int | None] = []
        self.timeouts: list[int] = []
        self.limits: list[int] = []
        self.exhausted = asyncio.Event()

    async def get_updates(self, offset: int | None, timeout_s: int, limit: int = 100) -> UpdateBatch:
        self.offsets.append(offset)
        self.limits.append(limit)
        self.timeouts.append(timeout_s)
        if not self.script:
            self.exhausted.set()
            await asyncio.Event().wait()  # a long poll with nothing to say
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def send_text(
        self, chat_id: int, text: str, *, reply_to: int | None = None, buttons: Keyboard | None = None
    ) -> int | None:
        raise NotImplementedError

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, *, buttons: Keyboard | None = None
    ) -> bool:
        raise NotImplementedError

    async def set_commands(self, commands: Sequence[tuple[str, str]]) -> None:
        raise NotImplementedError

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        raise NotImplementedError

    def open_file(self, document: Document) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        raise NotImplementedError


async def run_until_exhausted(platform: ScriptedPlatform, queue: ChatQueue) -> Poller:
    """Run a poller until the script is used up (it then long-polls forever), then stop it."""
    poller = Poller(platform, queue, backoff=FAST)
    task = asyncio.create_task(poller.run())
    waiter = asyncio.create_task(platform.exhausted.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), "the poller stopped on its own"
    for running in (task, waiter):
        running.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)
    return poller


async def test_offsets_follow_the_batches_and_cover_skipped_updates() -> None:
    """Each poll asks after the last update taken, including ones the platform skipped."""
    platform = ScriptedPlatform(
        [
            UpdateBatch(events=(make_event(10, chat_id=1), make_event(11, chat_id=2)), next_offset=12),
            UpdateBatch(events=(), next_offset=15),  # three updates the bot ignores (edits, members…)
            UpdateBatch(events=(make_event(15, chat_id=3),), next_offset=16),
        ]
    )
    queue = ChatQueue(10)
    await run_until_exhausted(platform, queue)
    assert platform.offsets == [None, 12, 15, 16]
    assert set(platform.timeouts) == {60}
    assert [e.update_id for e in queue.unfinished()] == [10, 11, 15]


async def test_a_full_queue_holds_the_next_poll_back() -> None:
    """With memory full, the batch is journaled and confirmed, but the next poll waits for room."""
    platform = ScriptedPlatform(
        [UpdateBatch(events=(make_event(1), make_event(2, chat_id=2)), next_offset=3)]
    )
    queue = ChatQueue(1)
    poller = Poller(platform, queue, backoff=FAST)
    task = asyncio.create_task(poller.run())
    first = await queue.get()
    assert (queue.qsize(), queue.backlog) == (1, 1)  # update 2 waits in the journal
    assert platform.offsets == [None]  # no room: no second poll yet
    await queue.task_done(first)
    second = await asyncio.wait_for(queue.get(), DEADLINE_S)  # read back from the journal
    assert platform.offsets == [None]  # memory is full again, with update 2
    await queue.task_done(second)
    await asyncio.wait_for(platform.exhausted.wait(), DEADLINE_S)
    assert platform.offsets == [None, 3]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_transient_errors_and_rate_limits_are_retried() -> None:
    """Network errors, 5xx and 429 are waited out; polling goes on at the same offset."""
    platform = ScriptedPlatform(
        [
            UpdateBatch(events=(make_event(1),), next_offset=2),
            TransientError("502"),
            RetryAfter(0.001),
            TransientError("timeout"),
            UpdateBatch(events=(make_event(2),), next_offset=3),
        ]
    )
    queue = ChatQueue(10)
    await run_until_exhausted(platform, queue)
    assert platform.offsets == [None, 2, 2, 2, 2, 3]


async def test_conflicts_are_retried_then_fatal() -> None:
    """409s are retried for a while (an old instance's last poll), then the poller gives up."""
    platform = ScriptedPlatform([Conflict("409")] * 1000)
    poller = Poller(platform, ChatQueue(10), backoff=FAST)
    with pytest.raises(FatalPollingError, match="another instance"):
        await asyncio.wait_for(poller.run(), DEADLINE_S)
    assert len(platform.offsets) > 1


async def test_a_short_conflict_is_forgotten_after_a_good_poll() -> None:
    """A conflict followed by success resets the clock: later conflicts start a new window."""
    platform = ScriptedPlatform([Conflict("409"), UpdateBatch(events=(), next_offset=None), Conflict("409")])
    await run_until_exhausted(platform, ChatQueue(10))
    assert platform.offsets == [None, None, None, None]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("telegram", "Telegram no longer accepts the bot token"),
        ("vk", "VK no longer accepts the community token"),
    ],
)
async def test_a_revoked_token_is_fatal_at_once_naming_the_platform(name: str, says: str) -> None:
    """401 (VK: error 5) while polling ends the poller immediately, saying which platform's token."""
    platform = ScriptedPlatform([Unauthorized("401")])
    platform.name = name
    with pytest.raises(FatalPollingError) as ended:
        await asyncio.wait_for(Poller(platform, ChatQueue(10), backoff=FAST).run(), DEADLINE_S)
    assert str(ended.value) == says
    assert platform.offsets == [None]

"""VkPlatform against the fake VK API over real HTTP: the start checks and the long poll.

No test sleeps or asserts a duration: each waits for the fake to see what it expects.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import cast

import pytest

from tests.fakes.vk import GROUP_ID, TOKEN, FakeVk
from tests.vk_fixtures import USER, MakePlatform, make_platform, platform, vk
from tgs3bot.errors import RetryAfter, StartupError, TransientError
from tgs3bot.events import Event, EventKind
from tgs3bot.interfaces import UpdateQueue
from tgs3bot.platforms.vk import VkPlatform
from tgs3bot.poller import Poller
from tgs3bot.state.memory import MemoryState

__all__ = ["make_platform", "platform", "vk"]  # fixtures


# -- start -----------------------------------------------------------------------------------------


async def test_start_checks_group_and_long_poll(vk: FakeVk, platform: VkPlatform) -> None:
    """Start asks for the token's community, its Long Poll settings and a server; token in bodies only."""
    assert [c.method for c in vk.calls] == [
        "groups.getById",
        "groups.getLongPollSettings",
        "groups.getLongPollServer",
    ]
    assert vk.token_in_query == []
    assert platform.name == "vk"
    assert TOKEN not in repr(platform)


async def test_bad_token_is_one_line_startup_error(vk: FakeVk, make_platform: MakePlatform) -> None:
    """VK's error 5 at start is a StartupError about the token, which never shows in it."""
    with pytest.raises(StartupError, match="token") as caught:
        await make_platform(token="vk1.a.wrong")
    assert "error 5" in str(caught.value)
    assert "vk1.a.wrong" not in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_token_of_another_community(vk: FakeVk, make_platform: MakePlatform) -> None:
    """A token of another community is refused, naming both communities."""
    vk.token_group_id = 777
    with pytest.raises(StartupError, match=f"community 777's, not TGS3BOT_VK_GROUP_ID={GROUP_ID}"):
        await make_platform()


async def test_long_poll_off(vk: FakeVk, make_platform: MakePlatform) -> None:
    """A community without the Bots Long Poll API on cannot start."""
    vk.long_poll_enabled = False
    with pytest.raises(StartupError, match="Bots Long Poll API is off"):
        await make_platform()


async def test_event_types_not_ticked(vk: FakeVk, make_platform: MakePlatform) -> None:
    """Long Poll without message_event ticked cannot start, and says which type is missing."""
    vk.long_poll_events["message_event"] = 0
    with pytest.raises(StartupError, match=r"lacks event types: message_event$"):
        await make_platform()


@pytest.mark.parametrize("version", ["5.92", ""])
async def test_old_long_poll_version(vk: FakeVk, make_platform: MakePlatform, version: str) -> None:
    """A Long Poll API version before callback buttons (5.103) cannot start, and says what to set."""
    vk.long_poll_version = version
    with pytest.raises(StartupError, match=r"Long Poll API version is (5\.92|unset): set 5\.199"):
        await make_platform()


async def test_token_without_manage_right(vk: FakeVk, make_platform: MakePlatform) -> None:
    """A token that may not read the Long Poll settings (error 15) is a StartupError naming the error."""
    vk.fail("groups.getLongPollSettings", 15)
    with pytest.raises(StartupError, match="Long Poll settings: VK error 15"):
        await make_platform()


async def test_start_retries_server_trouble(vk: FakeVk, make_platform: MakePlatform) -> None:
    """An internal VK error (10) and a rate limit (6) at start are retried."""
    vk.fail("groups.getById", 10)
    vk.fail("groups.getLongPollServer", 6)
    await make_platform()
    assert [c.status for c in vk.calls_of("groups.getById")] == [10, 200]
    assert [c.status for c in vk.calls_of("groups.getLongPollServer")] == [6, 200]


async def test_unreachable_api_at_start(make_platform: MakePlatform) -> None:
    """An API where nothing listens ends the start with one StartupError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StartupError, match="could not check the VK community token"):
        await make_platform(api_url=f"http://127.0.0.1:{port}/method")


# -- long poll ---------------------------------------------------------------------------------


async def test_poll_waits_for_a_message(vk: FakeVk, platform: VkPlatform) -> None:
    """A long poll stays open until a user writes, then returns the event and VK's next ts."""
    poll = asyncio.create_task(platform.get_updates(None, timeout_s=60))
    await vk.wait_for_polls(1)
    assert not poll.done()
    assert vk.polls[0]["wait"] == "25"
    assert vk.polls[0]["act"] == "a_check"
    vk.send_message(USER, "hello")
    batch = await poll
    (event,) = batch.events
    assert (event.platform, event.kind, event.chat_id, event.text) == ("vk", EventKind.MESSAGE, USER, "hello")
    assert batch.next_offset == vk.ts


async def test_wait_never_exceeds_timeout(vk: FakeVk, platform: VkPlatform) -> None:
    """A poll with timeout 0 asks VK not to wait."""
    batch = await platform.get_updates(None, timeout_s=0)
    assert (batch.events, vk.polls[0]["wait"]) == ((), "0")


async def test_cursor_saved_when_next_poll_is_asked(vk: FakeVk, make_platform: MakePlatform) -> None:
    """The ts confirming a batch is saved only when the poller asks for the next poll."""
    state = MemoryState()
    platform = await make_platform(state=state)
    first_ts = str(vk.ts)
    vk.send_message(USER, "one")
    batch = await platform.get_updates(None, timeout_s=0)
    assert await state.get_cursor("vk") == first_ts  # the first poll's own ts, not the batch's end
    assert batch.next_offset is not None
    await platform.get_updates(batch.next_offset, timeout_s=0)
    assert await state.get_cursor("vk") == str(batch.next_offset)
    assert vk.polls[-1]["ts"] == str(batch.next_offset)


async def test_restart_polls_from_the_cursor_and_gets_the_same_ids(
    vk: FakeVk, make_platform: MakePlatform
) -> None:
    """A batch not confirmed before a restart comes again from the saved cursor, with the same ids."""
    state = MemoryState()
    first = await make_platform(state=state)
    await first.get_updates(None, timeout_s=0)  # saves the cursor
    vk.send_message(USER, "hello", attachments=[vk.add_doc(b"a", title="a"), vk.add_doc(b"b", title="b")])
    before = await first.get_updates(None, timeout_s=0)
    await first.close()
    again = await (await make_platform(state=state)).get_updates(None, timeout_s=0)
    assert [e.update_id for e in again.events] == [e.update_id for e in before.events]
    assert len({e.update_id for e in again.events}) == 2


async def test_malformed_update_is_skipped(vk: FakeVk, platform: VkPlatform) -> None:
    """An update VK sent malformed is skipped; the rest of the batch comes through."""
    vk.add_event("message_new", {"message": {"text": "no peer"}})
    vk.send_message(USER, "fine")
    batch = await platform.get_updates(None, timeout_s=0)
    assert [e.text for e in batch.events] == ["fine"]


async def test_failed_1_takes_the_new_ts(vk: FakeVk, platform: VkPlatform) -> None:
    """failed 1 (history lost): an empty batch moving to VK's new ts."""
    vk.send_message(USER, "lost")
    vk.fail_poll(1)
    batch = await platform.get_updates(None, timeout_s=0)
    assert (batch.events, batch.next_offset) == ((), vk.ts)


async def test_cursor_older_than_vk_history(vk: FakeVk, make_platform: MakePlatform) -> None:
    """After an outage longer than VK keeps history, the saved cursor gets failed 1: go on from VK's ts."""
    state = MemoryState()
    await (await make_platform(state=state)).get_updates(None, timeout_s=0)  # saves the cursor
    vk.send_message(USER, "sent while the bot was down")
    vk.forget_history()
    batch = await (await make_platform(state=state)).get_updates(None, timeout_s=0)
    assert (batch.events, batch.next_offset) == ((), vk.ts)


async def test_failed_2_takes_a_new_key_and_keeps_the_ts(vk: FakeVk, platform: VkPlatform) -> None:
    """failed 2 (key expired): a new server from VK, the same ts, and the next poll gets the events."""
    first = await platform.get_updates(None, timeout_s=0)
    assert first.next_offset is not None
    vk.send_message(USER, "kept")
    vk.fail_poll(2)
    batch = await platform.get_updates(first.next_offset, timeout_s=0)
    assert (batch.events, batch.next_offset) == ((), first.next_offset)
    assert len(vk.calls_of("groups.getLongPollServer")) == 2
    again = await platform.get_updates(batch.next_offset, timeout_s=0)
    assert [e.text for e in again.events] == ["kept"]
    assert vk.polls[-1]["key"] != vk.polls[-2]["key"]


async def test_failed_3_takes_a_new_key_and_ts(vk: FakeVk, platform: VkPlatform) -> None:
    """failed 3 (information lost): a new server, and its ts."""
    vk.send_message(USER, "x")
    vk.fail_poll(3)
    batch = await platform.get_updates(None, timeout_s=0)
    assert (batch.events, batch.next_offset) == ((), vk.ts)
    assert len(vk.calls_of("groups.getLongPollServer")) == 2


async def test_rate_limited_server_refresh_is_raised_to_the_poller(vk: FakeVk, platform: VkPlatform) -> None:
    """getLongPollServer failing after failed 2 is raised translated: the poller waits and retries."""
    vk.fail_poll(2)
    vk.fail("groups.getLongPollServer", 6)
    with pytest.raises(RetryAfter):
        await platform.get_updates(None, timeout_s=0)


async def test_long_poll_server_down_is_transient(vk: FakeVk, platform: VkPlatform) -> None:
    """A long-poll server that cannot be reached is a TransientError naming no URL (its key)."""
    await vk.stop()
    with pytest.raises(TransientError) as caught:
        await platform.get_updates(None, timeout_s=0)
    assert "127.0.0.1" not in str(caught.value)


class RecordingQueue:
    """The poller's side of a queue: takes every batch, noting the saved cursor at that moment."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.batches: list[Sequence[Event]] = []
        self.cursor_at_put: list[str | None] = []
        self.taken = asyncio.Event()

    async def wait_for_room(self) -> int:
        return 100

    async def put_batch(self, events: Sequence[Event]) -> None:
        self.cursor_at_put.append(await self.state.get_cursor("vk"))
        self.batches.append(events)
        self.taken.set()


async def test_poller_moves_the_cursor_only_after_the_batch_is_taken(
    vk: FakeVk, make_platform: MakePlatform
) -> None:
    """With the real poller, the ts ending a batch is saved only with the poll after put_batch."""
    state = MemoryState()
    platform = await make_platform(state=state)
    first_ts = str(vk.ts)
    queue = RecordingQueue(state)
    poller = asyncio.create_task(Poller(platform, cast(UpdateQueue, queue), poll_timeout_s=60).run())
    try:
        await vk.wait_for_polls(1)
        vk.send_message(USER, "hello")
        await queue.taken.wait()
        assert queue.cursor_at_put == [first_ts]
        await vk.wait_for_polls(2)
        assert await state.get_cursor("vk") == str(vk.ts) == vk.polls[1]["ts"]
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
    assert [e.text for batch in queue.batches for e in batch] == ["hello"]

"""VkPlatform against the fake VK API over real HTTP: start checks, long poll, replies, downloads.

No test sleeps or asserts a duration: each waits for the fake to see what it expects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from tests.fakes.vk import GROUP_ID, TOKEN, FakeVk
from tgs3bot.config import BackoffConfig
from tgs3bot.errors import FileUnavailable, RetryAfter, StartupError, TransferError, TransientError
from tgs3bot.events import Button, EventKind
from tgs3bot.platforms import vk_files
from tgs3bot.platforms.vk import VkPlatform
from tgs3bot.platforms.vk_api import VkApi
from tgs3bot.state.memory import MemoryState

FAST = BackoffConfig(initial_s=0.01, max_s=0.05, send_attempts=4)
USER = 501
MakePlatform = Callable[..., Awaitable[VkPlatform]]


@pytest.fixture
async def vk() -> AsyncIterator[FakeVk]:
    """The fake VK API, on a free loopback port."""
    async with FakeVk() as fake:
        yield fake


@pytest.fixture
async def make_platform(vk: FakeVk) -> AsyncIterator[MakePlatform]:
    """Build (and by default start) VkPlatforms on the fake; closed after the test."""
    made: list[VkPlatform] = []

    async def make(
        *, start: bool = True, state: MemoryState | None = None, token: str = TOKEN, **kwargs: Any
    ) -> VkPlatform:
        kwargs.setdefault("api_url", vk.api_url)
        kwargs.setdefault("backoff", FAST)
        platform = VkPlatform(SecretStr(token), GROUP_ID, cursors=state or MemoryState(), **kwargs)
        made.append(platform)
        if start:
            await platform.start()
        return platform

    yield make
    for platform in made:
        await platform.close()


@pytest.fixture
async def platform(make_platform: MakePlatform) -> VkPlatform:
    """A started VkPlatform."""
    return await make_platform()


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


# -- replies ---------------------------------------------------------------------------------------


async def test_send_text_with_reply_and_buttons(vk: FakeVk, platform: VkPlatform) -> None:
    """A reply is a forward with is_reply; buttons are inline callbacks; the id edits the message."""
    user_message = vk.send_message(USER, "hi")
    buttons = ((Button("✏️ Rename", "rn:1"), Button("Keep this name", "kp:1")),)
    cmid = await platform.send_text(
        USER, "[document] ok", reply_to=user_message["conversation_message_id"], buttons=buttons
    )
    assert cmid is not None
    sent = vk.message(USER, cmid)
    assert (sent.text, sent.reply_to) == ("[document] ok", user_message["conversation_message_id"])
    assert sent.keyboard is not None
    labels = [b["action"]["label"] for b in sent.keyboard["buttons"][0]]
    assert labels == ["✏️ Rename", "Keep this name"]
    assert await platform.edit_text(USER, cmid, "50 %") is True
    assert vk.chat_view(USER) == ["50 %"]
    assert await platform.edit_text(USER, cmid + 100, "nowhere") is False


async def test_random_id_unique_per_reply(vk: FakeVk, platform: VkPlatform) -> None:
    """Every reply carries its own random_id, so VK keeps each of them."""
    for n in range(5):
        await platform.send_text(USER, f"reply {n}")
    random_ids = [int(c.params["random_id"]) for c in vk.calls_of("messages.send")]
    assert len(set(random_ids)) == 5
    assert vk.texts(USER) == [f"reply {n}" for n in range(5)]


@pytest.mark.parametrize("code", [6, 9, 10])
async def test_rate_and_flood_errors_are_retried_with_the_same_random_id(
    vk: FakeVk, platform: VkPlatform, code: int
) -> None:
    """Errors 6 and 9 (and VK's internal 10) wait and retry the same reply, with the same random_id."""
    vk.fail("messages.send", code, times=2)
    cmid = await platform.send_text(USER, "[greeting] hi")
    calls = vk.calls_of("messages.send")
    assert [c.status for c in calls] == [code, code, 200]
    assert len({c.params["random_id"] for c in calls}) == 1
    assert cmid is not None
    assert vk.texts(USER) == ["[greeting] hi"]


async def test_retry_after_a_lost_answer_keeps_one_message(vk: FakeVk, platform: VkPlatform) -> None:
    """A reply VK took whose retry carries the same random_id stays one message (VK's dedup)."""
    await platform.send_text(USER, "once")
    first = vk.calls_of("messages.send")[0]
    replay = VkApi(SecretStr(TOKEN), vk.api_url)  # the exact request a retry after a lost answer sends
    try:
        answer = await replay.call("messages.send", first.params)
    finally:
        await replay.close()
    assert vk.texts(USER) == ["once"]
    assert answer[0]["conversation_message_id"] == vk.messages[0].conversation_message_id


async def test_rate_limit_that_lasts_is_raised(vk: FakeVk, platform: VkPlatform) -> None:
    """Retries are bounded: a rate limit that does not end is raised after send_attempts."""
    vk.fail("messages.send", 6, times=None)
    with pytest.raises(RetryAfter):
        await platform.send_text(USER, "never")
    assert len(vk.calls_of("messages.send")) == FAST.send_attempts


@pytest.mark.parametrize("code", [901, 902])
async def test_no_permission_to_write_is_dropped(vk: FakeVk, platform: VkPlatform, code: int) -> None:
    """901/902 (no permission to write) are logged and dropped: send_text returns None, once."""
    (vk.blocked_peers if code == 901 else vk.private_peers).add(USER)
    with structlog.testing.capture_logs() as logs:
        assert await platform.send_text(USER, "hello") is None
    assert len(vk.calls_of("messages.send")) == 1
    assert [e["event"] for e in logs] == ["reply_dropped"]
    assert f"VK error {code}" in logs[0]["reason"]


async def test_answer_callback(vk: FakeVk, platform: VkPlatform) -> None:
    """A button press is answered with its event, user and peer; a text goes as a snackbar."""
    vk.press_button(USER, "rn:1", cmid=3)
    (event,) = (await platform.get_updates(None, timeout_s=0)).events
    assert event.callback_id is not None
    await platform.answer_callback(event.callback_id)
    await platform.answer_callback(event.callback_id, "The name stays.")
    plain, snackbar = vk.calls_of("messages.sendMessageEventAnswer")
    assert (int(plain.params["user_id"]), int(plain.params["peer_id"])) == (USER, USER)
    assert "event_data" not in plain.params
    assert snackbar.params["event_data"] == {"type": "show_snackbar", "text": "The name stays."}


async def test_set_commands_is_a_no_op(vk: FakeVk, platform: VkPlatform) -> None:
    """VK has no command menu: set_commands calls nothing."""
    calls = len(vk.calls)
    await platform.set_commands([("help", "what this bot does")])
    assert len(vk.calls) == calls


# -- downloads -------------------------------------------------------------------------------------


async def document_of(vk: FakeVk, platform: VkPlatform, attachment: dict[str, Any]) -> Any:
    """The document of a message carrying ``attachment``, as the platform maps it."""
    vk.send_message(USER, attachments=[attachment])
    (event,) = (await platform.get_updates(None, timeout_s=0)).events
    return event.document


async def read_all(platform: VkPlatform, document: Any) -> bytes:
    """Every byte ``open_file`` streams."""
    async with platform.open_file(document) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def test_download_streams_while_held(vk: FakeVk, platform: VkPlatform) -> None:
    """The first chunk arrives while the rest is held back: the file is streamed, not read whole."""
    hold = asyncio.Event()
    content = bytes(range(256)) * 1024
    document = await document_of(vk, platform, vk.add_doc(content, title="big.bin", hold=hold))
    async with platform.open_file(document) as chunks:
        first = await anext(chunks)
        assert content.startswith(first) and len(first) < len(content)
        hold.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert first + rest == content


async def test_doc_over_the_limit_is_not_downloaded(vk: FakeVk, make_platform: MakePlatform) -> None:
    """A doc whose size exceeds the limit is refused with a fixed reason, before any download."""
    platform = await make_platform(download_limit=1000)
    document = await document_of(vk, platform, vk.add_doc(b"x" * 1001, title="big.bin"))
    with pytest.raises(FileUnavailable) as caught:
        await read_all(platform, document)
    assert caught.value.reason == vk_files.file_too_big(1000)
    assert vk.docs[document.file_unique_id].downloads_started == 0


async def test_doc_bigger_than_it_said_is_cut_off(vk: FakeVk, make_platform: MakePlatform) -> None:
    """A download longer than the limit (the doc's size said less) is refused, not stored."""
    platform = await make_platform(download_limit=1000)
    document = await document_of(vk, platform, vk.add_doc(b"x" * 5000, title="liar.bin", size=10))
    with pytest.raises(FileUnavailable, match="bigger than the bot downloads"):
        await read_all(platform, document)


async def test_broken_download_is_a_transfer_error(vk: FakeVk, platform: VkPlatform) -> None:
    """A download cut short is a TransferError with a fixed reason (never the URL)."""
    document = await document_of(vk, platform, vk.add_doc(b"y" * 200_000, truncate_at=70_000))
    with pytest.raises(TransferError) as caught:
        await read_all(platform, document)
    assert caught.value.reason == vk_files.DOWNLOAD_BROKE_OFF


async def test_download_http_error_is_file_unavailable(vk: FakeVk, platform: VkPlatform) -> None:
    """An error page is never stored: HTTP 404 is FileUnavailable with the status."""
    document = await document_of(vk, platform, vk.add_doc(b"z", status=404))
    with pytest.raises(FileUnavailable, match=r"HTTP 404"):
        await read_all(platform, document)


async def test_download_that_cannot_start(vk: FakeVk, platform: VkPlatform) -> None:
    """A doc server that cannot be reached is a TransferError saying so."""
    document = await document_of(vk, platform, vk.add_doc(b"z"))
    await vk.stop()
    with pytest.raises(TransferError) as caught:
        await read_all(platform, document)
    assert caught.value.reason == vk_files.DOWNLOAD_NOT_STARTED


# -- the token -------------------------------------------------------------------------------------


async def test_token_never_in_logs_errors_or_replies(
    vk: FakeVk, make_platform: MakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    """Through retries, refusals, failed starts and downloads, no log line or reply holds the token."""
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with structlog.testing.capture_logs() as logs:
        platform = await make_platform()
        vk.fail("messages.send", 6, times=2)
        await platform.send_text(USER, "[greeting] hi")
        vk.blocked_peers.add(USER + 1)
        await platform.send_text(USER + 1, "dropped")
        vk.fail("messages.edit", 100)
        await platform.edit_text(USER, 1, "x")
        document = await document_of(vk, platform, vk.add_doc(b"q" * 100_000, truncate_at=10))
        try:
            await read_all(platform, document)
        except TransferError as exc:
            errors.append(repr(exc))
        vk.token_group_id = 1
        try:
            await make_platform()
        except StartupError as exc:
            errors.append(repr(exc))
    seen = [json.dumps(logs, default=str), caplog.text, *errors, *vk.texts(USER), *vk.texts(USER + 1)]
    assert logs and errors
    assert not [text for text in seen if TOKEN in text]
    assert vk.token_in_query == []

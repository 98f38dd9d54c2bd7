"""Checks that the fake Bot API behaves like Telegram as aiogram sees it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import Update

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """A running fake Bot API server."""
    async with FakeTelegram() as fake:
        yield fake


def make_bot(base_url: str, token: str = TOKEN) -> Bot:
    """An aiogram Bot pointed at the fake, as tgs3bot builds it."""
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    """An aiogram Bot talking to ``tg``; its HTTP session is closed afterwards."""
    client = make_bot(tg.base_url)
    async with client:
        yield client


async def test_get_me(tg: FakeTelegram, bot: Bot) -> None:
    """getMe answers the bot user and is recorded."""
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (bot.id, "tgs3_test_bot", True)
    assert [c.method for c in tg.calls] == ["getMe"]


async def test_wrong_token_is_unauthorized(tg: FakeTelegram) -> None:
    """A token other than the configured one gets 401."""
    async with make_bot(tg.base_url, "42:" + "x" * 35) as other:
        with pytest.raises(TelegramUnauthorizedError):
            await other.get_me()
    assert tg.calls[0].status == 401


async def test_long_poll_waits_and_wakes_on_update(tg: FakeTelegram, bot: Bot) -> None:
    """A getUpdates with a timeout stays open until an update arrives, then returns it."""
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for_call(lambda c: c.method == "getUpdates")
    assert not poll.done()
    update_id = tg.add_update(updates.message(7, text="hi"))
    got = await asyncio.wait_for(poll, 5)
    assert [u.update_id for u in got] == [update_id]
    assert got[0].message is not None
    assert got[0].message.text == "hi"


async def test_empty_poll_without_timeout_returns_nothing(bot: Bot) -> None:
    """getUpdates with timeout 0 and nothing pending answers an empty list at once."""
    assert await bot.get_updates(timeout=0) == []


async def test_confirmed_offset_drops_updates(tg: FakeTelegram, bot: Bot) -> None:
    """Updates below a passed offset are gone for good, and the offset is awaitable."""
    first, second = tg.add_updates([updates.message(1, text="a"), updates.message(1, text="b")])
    assert [u.update_id for u in await bot.get_updates()] == [first, second]
    assert [u.update_id for u in await bot.get_updates(offset=second)] == [second]
    await tg.wait_confirmed(second, timeout=1)
    assert [u.update_id for u in await bot.get_updates(offset=first)] == [second]
    assert tg.confirmed_offset == second
    assert tg.pending_update_ids == [second]


async def test_second_concurrent_poll_conflicts(tg: FakeTelegram, bot: Bot) -> None:
    """A getUpdates while another is in flight gets 409, which aiogram raises as a conflict."""
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for_call(lambda c: c.method == "getUpdates")
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await bot.get_updates(timeout=30)
    tg.add_update(updates.message(3, text="x"))
    assert len(await asyncio.wait_for(poll, 5)) == 1
    assert tg.max_concurrent_polls_seen == 2
    assert [c.status for c in tg.calls_of("getUpdates")] == [200, 409]


async def test_dropped_poll_frees_the_slot(tg: FakeTelegram, bot: Bot) -> None:
    """A client that abandons its long poll does not make the next poll conflict."""
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for_call(lambda c: c.method == "getUpdates")
    assert tg.polls_in_flight == 1
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    await tg.wait_polls_idle(timeout=5)
    assert await bot.get_updates(timeout=0) == []
    assert tg.max_concurrent_polls_seen == 1


async def test_fail_answers_retry_after_then_recovers(tg: FakeTelegram, bot: Bot) -> None:
    """A queued 429 fault reaches aiogram as TelegramRetryAfter; the next call succeeds."""
    tg.fail("sendMessage", status=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(5, "hello")
    assert caught.value.retry_after == 3
    await bot.send_message(5, "hello")
    assert tg.sent(5) == ["hello"]
    assert tg.sent(5, include_failed=True) == ["hello", "hello"]


async def test_html_error_page_is_not_json(tg: FakeTelegram, bot: Bot) -> None:
    """An html fault mimics a proxy's error page, which aiogram cannot decode."""
    tg.fail("getMe", status=502, html=True, times=None)
    for _ in range(2):
        with pytest.raises(ClientDecodeError):
            await bot.get_me()
    tg.clear_faults("getMe")
    assert (await bot.get_me()).username == "tgs3_test_bot"


async def test_blocked_chat_and_unmodified_edit(tg: FakeTelegram, bot: Bot) -> None:
    """Blocked chats get 403 and an edit to the same text gets 400 "not modified"."""
    tg.blocked_chats.add(9)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(9, "hi")
    sent = await bot.send_message(8, "one")
    edited = await bot.edit_message_text("two", chat_id=8, message_id=sent.message_id)
    assert not isinstance(edited, bool)
    assert (edited.text, edited.message_id) == ("two", sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("two", chat_id=8, message_id=sent.message_id)
    assert tg.chat_view(8) == ["two"]
    assert await tg.wait_for_text(8, "one", timeout=1) == ["one"]


async def test_download_serves_bytes(tg: FakeTelegram, bot: Bot) -> None:
    """getFile gives a path and the download route serves the registered bytes."""
    content = bytes(range(256)) * 1000
    doc = tg.add_file(content, file_name="report.pdf", mime_type="application/pdf")
    file = await bot.get_file(doc["file_id"])
    assert file.file_path == "documents/file_1.pdf"
    assert file.file_path is not None
    data = await bot.download_file(file.file_path)
    assert data is not None
    assert data.read() == content


async def test_truncated_download_fails_on_client(tg: FakeTelegram, bot: Bot) -> None:
    """A truncated download breaks off short of Content-Length and the client notices."""
    doc = tg.add_file(b"x" * 200_000, truncate_at=1000)
    file = await bot.get_file(doc["file_id"])
    assert file.file_path is not None
    with pytest.raises(aiohttp.ClientPayloadError):
        await bot.download_file(file.file_path)


async def test_held_download_stays_in_flight(tg: FakeTelegram, bot: Bot) -> None:
    """A held download starts, waits for the test's event, then completes."""
    release = asyncio.Event()
    doc = tg.add_file(b"y" * 300_000, hold=release)
    file = await bot.get_file(doc["file_id"])
    assert file.file_path is not None
    download = asyncio.create_task(bot.download_file(file.file_path))
    await tg.wait_download_started(doc["file_id"])
    assert not download.done()
    release.set()
    data = await asyncio.wait_for(download, 5)
    assert data is not None
    assert len(data.read()) == 300_000
    assert tg.files[doc["file_id"]].downloads_completed == 1


async def test_get_file_errors(tg: FakeTelegram, bot: Bot) -> None:
    """Unknown file ids and files over 20 MiB get Telegram's 400 answers."""
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")
    doc = tg.add_file(b"z", file_size=25 * 1024 * 1024)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(doc["file_id"])


@pytest.mark.parametrize(
    ("update", "kind"),
    [
        (updates.message(1, text="/start"), "message"),
        (updates.message(-100, user_id=2, chat_type="supergroup", text="hi"), "message"),
        (updates.message(1, document={"file_id": "f", "file_unique_id": "u"}), "message"),
        (updates.message(1, photo=True, caption="look"), "message"),
        (updates.message(1, sticker=True), "message"),
        (updates.message(1, voice=True), "message"),
        (updates.message(1, video=True), "message"),
        (updates.edited_message(1, message_id=5, text="new"), "edited_message"),
        (updates.callback_query(1, 5, "retry:1"), "callback_query"),
        (updates.my_chat_member(1), "my_chat_member"),
    ],
)
def test_builders_parse_as_updates(update: dict[str, Any], kind: str) -> None:
    """Every builder's dict is an Update aiogram accepts, of the expected kind."""
    parsed = Update.model_validate({"update_id": 1, **update})
    assert parsed.event_type == kind

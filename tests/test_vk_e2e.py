"""The real ``tgs3bot run`` serving Telegram and a VK community at once, against both fakes over HTTP.

A VK user gets the same markers and flow as a Telegram user; both platforms are served side by
side; a VK user and a Telegram user with the same number are two people (greeting, files, names).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.fakes.vk import GROUP_ID, FakeVk
from tests.fakes.vk import TOKEN as VK_TOKEN
from tests.helpers import greet, no_multipart_uploads, object_body, object_keys, press_answered, read_object
from tests.processes import (
    REPLY_TIMEOUT_S,
    TGS3BOT_RUN,
    BotProcess,
    Launch,
    bot_env,
    launch,
    wait_polling,
    wait_unless_exited,
)

pytestmark = pytest.mark.e2e
__all__ = ["launch", "vk"]  # the fixtures, used by the tests below

USER = 7  # the same number on both platforms: two different people
SAVED, NOT_SAVED = "[document has been saved]", "[document has not been saved]"


@pytest.fixture
async def vk() -> Any:
    """The fake VK API and long-poll server, on a free loopback port."""
    async with FakeVk() as fake:
        yield fake


def both_env(
    telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, **extra: str
) -> dict[str, str]:
    """A bot serving Telegram and the fake VK community."""
    vk_settings = {
        "TGS3BOT_VK_TOKEN": VK_TOKEN,
        "TGS3BOT_VK_GROUP_ID": str(GROUP_ID),
        "TGS3BOT_VK_API_URL": vk.api_url,
    }
    return bot_env(telegram, bucket, moto_endpoint, **vk_settings, **extra)


async def wait_vk_polling(vk: FakeVk, bot: BotProcess) -> None:
    """Return once the bot long-polls VK; fail at once (with its stderr) if the process ends first."""
    await wait_unless_exited(bot, vk.wait_for_polls(len(vk.polls) + 1, timeout=REPLY_TIMEOUT_S), "polling VK")


async def start_both(launch: Launch, env: dict[str, str], telegram: FakeTelegram, vk: FakeVk) -> BotProcess:
    """Launch the bot and wait until it polls both platforms."""
    bot = await launch(env)
    await wait_polling(telegram, bot)
    await wait_vk_polling(vk, bot)
    return bot


async def stop_cleanly(bot: BotProcess) -> None:
    """SIGTERM: exit 0, no traceback, neither token in the output."""
    bot.proc.send_signal(signal.SIGTERM)
    assert await bot.wait_exit() == 0, bot.stderr()
    bot.assert_no_traceback()
    bot.assert_no_secret(TOKEN)
    bot.assert_no_secret(VK_TOKEN)


def vk_doc(vk: FakeVk, content: bytes, title: str, **faults: Any) -> dict[str, Any]:
    """A doc attachment on the fake VK."""
    return vk.add_doc(content, title=title, **faults)


async def test_a_vk_user_gets_the_same_flow_while_telegram_is_served_too(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """Greeting, document required, document saved on VK, with a Telegram user of the same number at once."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    vk.send_message(USER, "/start")
    telegram.add_update(updates.message(USER, text="/start"))  # both at once: two people, two greetings
    await vk.wait_for_text(USER, "[greeting]", timeout=REPLY_TIMEOUT_S)
    await telegram.wait_for_text(USER, "[greeting]", timeout=REPLY_TIMEOUT_S)

    vk.send_message(USER, "hello")
    vk.send_message(USER, attachments=[{"type": "photo", "photo": {"id": 1, "owner_id": USER}}])
    texts = await vk.wait_for_text(USER, "[document is required]", count=2, timeout=REPLY_TIMEOUT_S)
    assert sum("[greeting]" in t for t in texts) == 1

    content = os.urandom(200_000)
    vk.send_message(USER, attachments=[vk_doc(vk, content, "Отчёт (1).pdf")])
    telegram_doc = telegram.add_file(b"from telegram", file_name="tg.txt", mime_type="text/plain")
    telegram.add_update(updates.message(USER, document=telegram_doc))
    texts = await vk.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)
    await telegram.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)
    assert any("[document]" in t for t in texts) and "Отчёт (1).pdf" in texts[-1]
    body, head = await read_object(s3, bucket, "Отчёт (1).pdf")
    assert body == content
    assert head["Metadata"]["platform"] == "vk" and head["Metadata"]["user-id"] == str(USER)
    assert (await read_object(s3, bucket, "tg.txt"))[1]["Metadata"]["platform"] == "telegram"
    await stop_cleanly(bot)


async def test_a_vk_doc_too_big_or_broken_is_not_saved(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """Over VK's limit: refused before any download; cut short: refused, nothing left in the bucket."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    huge = vk_doc(vk, b"x", "huge.iso", size=300 * 1024 * 1024)
    broken = vk_doc(vk, os.urandom(300_000), "broken.bin", truncate_at=100_000)
    vk.send_message(USER, attachments=[huge])
    vk.send_message(USER, attachments=[broken])
    texts = await vk.wait_for_text(USER, NOT_SAVED, count=2, timeout=REPLY_TIMEOUT_S)
    refusals = [t for t in texts if NOT_SAVED in t]
    assert vk.docs[f"{huge['doc']['owner_id']}_{huge['doc']['id']}"].downloads_started == 0
    assert "VK lets bots download at most 200.0 MiB" in refusals[0] and "broke off" in refusals[1], refusals
    assert await object_keys(s3, bucket) == [] and await no_multipart_uploads(s3, bucket)
    vk.send_message(USER, "still there?")  # the bot goes on serving
    await vk.wait_for_text(USER, "[document is required]", timeout=REPLY_TIMEOUT_S)
    await stop_cleanly(bot)


async def test_vk_rate_limits_are_waited_out(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str
) -> None:
    """VK errors 6 (too many requests) and 9 (flood control) on sending: retried, delivered once."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    vk.fail("messages.send", 6, times=2)
    vk.fail("messages.send", 9, times=1)
    vk.send_message(USER, "/start")
    texts = await vk.wait_for_text(USER, "[greeting]", timeout=REPLY_TIMEOUT_S)
    assert [c.status for c in vk.calls_of("messages.send")] == [6, 6, 9, 200]
    assert len(texts) == 1  # one message, however often it was tried
    await stop_cleanly(bot)


async def test_in_an_open_bot_a_name_belongs_to_one_person_across_platforms(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """Telegram user 7's file is not VK user 7's: not replaced, not listed, and the other way round."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    await greet(telegram, USER)
    tg_doc = telegram.add_file(b"telegram's", file_name="report.pdf", mime_type="application/pdf")
    telegram.add_update(updates.message(USER, document=tg_doc))
    await telegram.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)

    vk.send_message(USER, attachments=[vk_doc(vk, b"vk's", "report.pdf")])
    texts = await vk.wait_for_text(USER, NOT_SAVED, timeout=REPLY_TIMEOUT_S)
    assert "taken" in texts[-1]
    vk.send_message(USER, attachments=[vk_doc(vk, b"vk's own", "notes.txt")])
    await vk.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)
    vk.send_message(USER, "/files")
    await vk.wait_for_text(USER, "newest first", timeout=REPLY_TIMEOUT_S)
    listing = vk.texts(USER)[-1]
    assert "notes.txt" in listing and "report.pdf" not in listing

    theirs = telegram.add_file(b"telegram's notes", file_name="notes.txt", mime_type="text/plain")
    telegram.add_update(updates.message(USER, document=theirs))
    texts = await telegram.wait_for_text(USER, NOT_SAVED, timeout=REPLY_TIMEOUT_S)
    assert "taken" in texts[-1]
    assert await object_body(s3, bucket, "report.pdf") == b"telegram's"
    assert await object_body(s3, bucket, "notes.txt") == b"vk's own"
    await stop_cleanly(bot)


async def test_a_vk_only_bot_needs_no_telegram_token(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str
) -> None:
    """Without TGS3BOT_TELEGRAM_TOKEN the bot serves VK alone and never calls the Bot API."""
    env = both_env(telegram, vk, bucket, moto_endpoint)
    del env["TGS3BOT_TELEGRAM_TOKEN"]
    bot = await launch(env)
    await wait_vk_polling(vk, bot)
    vk.send_message(USER, "/start")
    await vk.wait_for_text(USER, "[greeting]", timeout=REPLY_TIMEOUT_S)
    await stop_cleanly(bot)
    assert telegram.calls == []
    [started] = [r for r in bot.log_records() if r.get("event") == "bot_started"]
    assert started["platforms"] == ["vk"]


async def test_with_redis_a_poll_and_a_work_process_serve_both_platforms(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, redis_url: str
) -> None:
    """``tgs3bot poll`` polls Telegram and VK (a lease each) into Redis; ``tgs3bot work`` answers both."""
    env = both_env(telegram, vk, bucket, moto_endpoint, TGS3BOT_REDIS_URL=redis_url)
    poller = await launch(env, [*TGS3BOT_RUN[:1], "poll"])
    await wait_polling(telegram, poller)
    await wait_vk_polling(vk, poller)
    worker = await launch(env, [*TGS3BOT_RUN[:1], "work"])
    vk.send_message(USER, "/start")
    telegram.add_update(updates.message(USER, text="/start"))
    await vk.wait_for_text(USER, "[greeting]", timeout=REPLY_TIMEOUT_S)
    await telegram.wait_for_text(USER, "[greeting]", timeout=REPLY_TIMEOUT_S)
    for process in (poller, worker):
        await stop_cleanly(process)


async def test_a_vk_user_renames_by_button_and_a_telegram_user_of_that_number_cannot(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """Rename works on VK through its callback buttons; the same button data on Telegram is refused."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    vk.send_message(USER, attachments=[vk_doc(vk, b"draft", "draft.txt")])
    await vk.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)
    saved = vk.last_message(USER, SAVED)
    rename = saved.button_data("Rename")

    await greet(telegram, USER)
    await press_answered(telegram, USER, rename)  # Telegram user 7 is not VK user 7
    await telegram.wait_for_text(USER, "[document has not been renamed]", timeout=REPLY_TIMEOUT_S)

    vk.press_button(USER, rename, saved.conversation_message_id)
    await vk.wait_for_text(USER, "Send the new name for «draft.txt»", timeout=REPLY_TIMEOUT_S)
    vk.send_message(USER, "final.txt")
    texts = await vk.wait_for_text(USER, "[document has been renamed]", timeout=REPLY_TIMEOUT_S)
    assert "final.txt" in texts[-1]
    assert await object_keys(s3, bucket) == ["final.txt"]
    assert await object_body(s3, bucket, "final.txt") == b"draft"
    await stop_cleanly(bot)

"""End to end: the real ``tgs3bot run`` process against the fake Bot API and moto's S3 server.

Each test starts the installed console script (or ``run_bot.py``) as a subprocess, configured only
through the environment, with stdout and stderr going to files (not a terminal, so the bot logs
JSON lines). Importing aiogram takes seconds, so the module starts only four processes and waits
for "the bot is polling" on the fake's getUpdates call, never on a sleep.

No test asserts how fast anything happens: each waits for its event (a call, a reply, the exit)
under a deadline generous enough for a loaded machine, which only turns a hang into a failure.
How long a failed start takes is a figure for the README, not an assertion here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from typing import Any

import pytest

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.helpers import object_keys, read_object
from tests.processes import (
    CHAT,
    MALFORMED_TOKEN,
    REJECTED_TOKEN,
    REPLY_TIMEOUT_S,
    RUN_BOT_PY,
    Launch,
    bot_env,
    failed_start_line,
    launch,
    wait_polling,
)

pytestmark = pytest.mark.e2e
__all__ = ["launch"]  # the fixture, used by the tests below


async def test_a_full_session_then_sigterm_mid_transfer_finishes_it_and_exits_0(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """One real process greets, refuses non-documents, saves a document verbatim, and on SIGTERM
    finishes the transfer in hand, replies, confirms the updates and exits 0."""
    bot = await launch(bot_env(telegram, bucket, moto_endpoint))
    await wait_polling(telegram, bot)

    telegram.add_update(updates.message(CHAT, text="/start"))
    texts = await telegram.wait_for_text(CHAT, "[greeting]", timeout=REPLY_TIMEOUT_S)
    assert len(texts) == 1

    telegram.add_update(updates.message(CHAT, text="hello"))
    texts = await telegram.wait_for_text(CHAT, "[document is required]", timeout=REPLY_TIMEOUT_S)
    assert len(texts) == 2

    picture = telegram.add_file(os.urandom(5_000), file_name=None, mime_type="image/jpeg")
    telegram.add_update(updates.message(CHAT, photo=picture))
    texts = await telegram.wait_for_text(CHAT, "[document is required]", count=2, timeout=REPLY_TIMEOUT_S)
    assert len(texts) == 3
    assert telegram.calls_of("getFile") == [], "a photo sent as a photo is not a file"

    name = "Отчёт [v2] (final).pdf"
    content = os.urandom(300 * 1024)
    document = telegram.add_file(content, file_name=name, mime_type="application/pdf")
    telegram.add_update(updates.message(CHAT, document=document))
    texts = await telegram.wait_for_text(CHAT, "[document has been saved]", timeout=REPLY_TIMEOUT_S)
    assert len(texts) == 5
    assert "[document]" in texts[3]
    assert "[document has been saved]" in texts[4]
    assert name in texts[4]
    data, stored = await read_object(s3, bucket, name)
    assert (data, stored["ContentType"]) == (content, "application/pdf")

    # SIGTERM while a transfer is in hand: its download is held after the first chunk.
    hold = asyncio.Event()
    second_name, second_content = "second part.bin", os.urandom(200 * 1024)
    second = telegram.add_file(
        second_content, file_name=second_name, mime_type="application/x-test", hold=hold
    )
    last_update_id = telegram.add_update(updates.message(CHAT, document=second))
    await telegram.wait_download_started(second["file_id"], timeout=REPLY_TIMEOUT_S)
    # The poller has taken the update and is long-polling again, so the stop must abandon that poll.
    await telegram.wait_for_call(
        lambda c: c.method == "getUpdates" and str(c.params.get("offset")) == str(last_update_id + 1),
        timeout=REPLY_TIMEOUT_S,
    )
    bot.proc.send_signal(signal.SIGTERM)
    # The long poll was dropped: the shutdown has begun.
    await telegram.wait_polls_idle(timeout=REPLY_TIMEOUT_S)
    hold.set()

    assert await bot.wait_exit() == 0, bot.stderr()
    texts = telegram.sent(CHAT)
    assert "[document]" in texts[5]
    assert "[document has been saved]" in texts[-1]
    assert second_name in texts[-1]
    assert sum("[document has been saved]" in text for text in texts) == 2
    data, stored = await read_object(s3, bucket, second_name)
    assert (data, stored["ContentType"]) == (second_content, "application/x-test")
    assert await object_keys(s3, bucket) == sorted([name, second_name])

    polls = telegram.calls_of("getUpdates")
    confirming = polls[-1]
    assert str(confirming.params.get("timeout")) == "0"
    assert str(confirming.params.get("offset")) == str(last_update_id + 1)
    assert confirming.ok
    assert telegram.pending_update_ids == []
    assert [str(p.params.get("timeout")) for p in polls[:-1]] == ["60"] * (len(polls) - 1)
    assert telegram.max_concurrent_polls_seen == 1

    [started_record] = [r for r in bot.log_records() if r.get("event") == "bot_started"]
    assert started_record["event_loop"] == "uvloop"  # the default where uvloop is installed (here)
    bot.assert_no_traceback()
    bot.assert_no_secret(TOKEN)


async def test_a_token_telegram_rejects_ends_the_process_with_one_line(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """A well-formed token that the Bot API answers 401 for ends the process non-zero, with one
    error line about the token."""
    bot = await launch(bot_env(telegram, bucket, moto_endpoint, TGS3BOT_TELEGRAM_TOKEN=REJECTED_TOKEN))
    line = await failed_start_line(telegram, bot)

    rejected = [c for c in telegram.calls_of("getMe") if c.status == 401]
    assert rejected, "the token was never checked with Telegram"
    assert "token" in line.lower()
    bot.assert_no_secret(REJECTED_TOKEN)


async def test_a_malformed_token_ends_run_bot_py_with_one_line(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """``python3 run_bot.py`` with a token that is not ``id:secret`` exits non-zero with one error
    line about the token."""
    env = bot_env(telegram, bucket, moto_endpoint, TGS3BOT_TELEGRAM_TOKEN=MALFORMED_TOKEN)
    bot = await launch(env, RUN_BOT_PY)
    line = await failed_start_line(telegram, bot)

    assert "token" in line.lower()
    bot.assert_no_secret(MALFORMED_TOKEN)


async def test_a_missing_bucket_ends_the_process_with_one_line_naming_it(
    launch: Launch, telegram: FakeTelegram, moto_endpoint: str, s3: Any
) -> None:
    """A bucket that does not exist ends the process non-zero with one error line that names the bucket."""
    missing = f"tgs3bot-missing-{uuid.uuid4().hex[:12]}"
    bot = await launch(bot_env(telegram, missing, moto_endpoint))
    line = await failed_start_line(telegram, bot)

    assert missing not in [b["Name"] for b in (await s3.list_buckets())["Buckets"]], "nothing created it"
    assert missing in line
    assert json.loads(line)["level"] == "error"
    bot.assert_no_secret(TOKEN)


# A second instance polling the same token (409 Conflict for over 90 s) is covered by unit-level tests.

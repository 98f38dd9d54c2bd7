"""A VK community token revoked while ``tgs3bot run`` serves Telegram and VK: drain, then exit 1.

The fake stops accepting the token and expires the long-poll key, so the bot's next poll is told
``failed: 2`` and the new key it asks for (``groups.getLongPollServer``) is refused with VK's
error 5. Polling VK cannot go on: the bot finishes the Telegram transfer it holds, like on
SIGTERM, and exits 1 with one line saying that VK no longer accepts the token.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.fakes.vk import TOKEN as VK_TOKEN
from tests.fakes.vk import FakeVk
from tests.helpers import greet, object_body
from tests.processes import REPLY_TIMEOUT_S, Launch, launch
from tests.test_vk_e2e import SAVED, USER, both_env, start_both, vk

pytestmark = pytest.mark.e2e
__all__ = ["launch", "vk"]  # the fixtures, used by the test below

REVOKED = "VK no longer accepts the community token"


async def test_a_vk_token_revoked_while_running_drains_and_exits_1_naming_vk(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """VK error 5 on the long-poll server refresh: the Telegram transfer in hand is saved, then exit 1."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    await greet(telegram, USER)
    hold = asyncio.Event()
    content = os.urandom(300 * 1024)
    doc = telegram.add_file(content, file_name="in hand.bin", hold=hold)
    telegram.add_update(updates.message(USER, document=doc))
    await telegram.wait_download_started(doc["file_id"], timeout=REPLY_TIMEOUT_S)

    since = len(vk.calls)
    vk.token = "vk1.a.SomeOtherTokenNowThatTheOldOneIsRevoked"
    vk.fail_poll(2)  # ends the poll in flight; the bot asks for a new key with the old token
    refused = await vk.wait_for_call(
        lambda c: c.method == "groups.getLongPollServer", since=since, timeout=REPLY_TIMEOUT_S
    )
    assert refused.status == 5
    hold.set()

    assert await bot.wait_exit() == 1, bot.stderr()
    assert SAVED in telegram.sent(USER)[-1]  # drained before the exit
    assert await object_body(s3, bucket, "in hand.bin") == content
    naming = [line for line in bot.stderr_lines() if "no longer accepts" in line]
    assert len(naming) == 1, naming
    [stopped] = [r for r in bot.log_records() if r.get("event") == "polling_stopped"]
    assert stopped["error"] == REVOKED and stopped["level"] == "error", stopped
    bot.assert_no_traceback()
    bot.assert_no_secret(TOKEN)
    bot.assert_no_secret(VK_TOKEN)

"""Transfer progress on VK, end to end: one message, edited with ``messages.edit``, before the outcome.

The fake holds the doc's download after its first chunk until the test has seen the bot edit its
progress message, so the edits come from the transfer being slow, never from a sleep.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk
from tests.helpers import object_body
from tests.processes import REPLY_TIMEOUT_S, Launch, launch
from tests.test_vk_e2e import SAVED, USER, both_env, start_both, stop_cleanly, vk, vk_doc

pytestmark = pytest.mark.e2e
__all__ = ["launch", "vk"]  # the fixtures, used by the test below

NAME = "slow from vk.bin"


async def test_a_slow_vk_transfer_edits_its_progress_message_then_says_saved(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """A held VK download gets one progress message, edited in place (100 % last) before the saved reply."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    vk.send_message(USER, "/start")
    await vk.wait_for_text(USER, "[greeting]", timeout=REPLY_TIMEOUT_S)
    hold = asyncio.Event()
    content = os.urandom(1024 * 1024)
    since = len(vk.calls)
    vk.send_message(USER, attachments=[vk_doc(vk, content, NAME, hold=hold, chunk_size=256 * 1024)])
    first_edit = await vk.wait_for_call(
        lambda c: c.method == "messages.edit", since=since, timeout=REPLY_TIMEOUT_S
    )
    hold.set()
    await vk.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)

    calls = vk.calls[since:]
    [progress] = [m for m in vk.messages if m.peer_id == USER and not m.text.startswith("[")]
    assert NAME in progress.text and "%" in progress.text, progress.text
    edits = [c for c in calls if c.method == "messages.edit"]
    assert first_edit in edits and all(c.status == 200 for c in edits), [c.status for c in edits]
    targets = {(int(c.params["peer_id"]), int(c.params["conversation_message_id"])) for c in edits}
    assert targets == {(USER, progress.conversation_message_id)}  # the progress message, nothing else
    assert len(progress.edits) == len(edits) >= 2 and "100 %" in progress.edits[-1], progress.edits
    assert all("%" in text for text in progress.edits), progress.edits

    sends = [c for c in calls if c.method == "messages.send" and c.status == 200]
    saved_at = next(n for n, c in enumerate(calls) if SAVED in c.params.get("message", ""))
    assert calls.index(edits[-1]) < saved_at  # the last edit lands before the outcome
    texts = [c.params["message"] for c in sends]
    assert "[document]" in texts[0] and SAVED in texts[-1] and len(texts) == 3, texts  # + the progress
    assert await object_body(s3, bucket, NAME) == content
    await stop_cleanly(bot)

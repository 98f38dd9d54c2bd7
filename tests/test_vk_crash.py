"""Nothing lost on VK either: ``tgs3bot run`` killed with SIGKILL mid-transfer, then started again.

The bot had saved VK's long-poll ``ts`` past the message before the kill, so VK will not send it
again: only the journal in the state file can bring it back.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk
from tests.helpers import no_multipart_uploads, object_body, object_keys
from tests.processes import REPLY_TIMEOUT_S, Launch, launch
from tests.test_vk_e2e import SAVED, USER, both_env, start_both, stop_cleanly, vk

pytestmark = pytest.mark.e2e
__all__ = ["launch", "vk"]  # the fixtures, used by the test below


async def test_sigkill_mid_vk_transfer_then_restart_saves_the_file_once(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """A VK doc whose transfer SIGKILL cut runs again after the restart, from the journal: saved once."""
    env = both_env(telegram, vk, bucket, moto_endpoint)
    first = await start_both(launch, env, telegram, vk)
    hold = asyncio.Event()  # never set while the first process lives: its transfer stays cut
    content = os.urandom(300 * 1024)
    attachment = vk.add_doc(content, title="from vk.bin", hold=hold)
    doc = vk.docs[f"{attachment['doc']['owner_id']}_{attachment['doc']['id']}"]
    vk.send_message(USER, attachments=[attachment])
    after = vk.ts  # the ts past the message: polled from once its batch is journaled
    await vk.wait_until(lambda: doc.downloads_started >= 1, "the download", timeout=REPLY_TIMEOUT_S)
    await vk.wait_until(
        lambda: any(int(p["ts"]) >= after for p in vk.polls),
        "a poll past the message",
        timeout=REPLY_TIMEOUT_S,
    )
    first.proc.send_signal(signal.SIGKILL)
    assert await first.wait_exit() == -signal.SIGKILL
    assert await object_keys(s3, bucket) == []

    hold.set()
    polls_before = len(vk.polls)
    second = await start_both(launch, env, telegram, vk)
    assert int(vk.polls[polls_before]["ts"]) >= after  # VK does not send the message again
    texts = await vk.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)
    assert sum(SAVED in t for t in texts) == 1
    assert await object_body(s3, bucket, "from vk.bin") == content
    assert await object_keys(s3, bucket) == ["from vk.bin"]
    assert await no_multipart_uploads(s3, bucket)
    await stop_cleanly(second)

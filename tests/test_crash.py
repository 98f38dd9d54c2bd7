"""Nothing lost: the real ``tgs3bot run`` process killed with SIGKILL mid-transfer, then started again.

The updates were confirmed to the fake Bot API before the kill, so Telegram will not send them
again: only the journal in the state file can bring them back.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import no_multipart_uploads, object_body, object_keys
from tests.processes import REPLY_TIMEOUT_S, Launch, bot_env, launch, wait_polling

pytestmark = pytest.mark.e2e
__all__ = ["launch"]  # the fixture, used by the tests below

CHATS = (501, 502, 503)
SAVED = "[document has been saved]"


async def test_sigkill_mid_transfer_loses_nothing_and_saves_each_file_once(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """Three users' transfers cut by SIGKILL run again after the restart, each saved once and whole;
    the message one of them sent behind its transfer is answered after it, in order."""
    env = bot_env(telegram, bucket, moto_endpoint)
    first = await launch(env)
    await wait_polling(telegram, first)

    hold = asyncio.Event()  # never set while the first process lives: its transfers stay cut
    contents = {chat: os.urandom(300 * 1024) for chat in CHATS}
    docs = {
        chat: telegram.add_file(contents[chat], file_name=f"from {chat}.bin", hold=hold) for chat in CHATS
    }
    later = telegram.add_file(b"sent after the text", file_name="later.txt", mime_type="text/plain")
    ids = telegram.add_updates(
        [updates.message(chat, document=docs[chat]) for chat in CHATS]
        + [updates.message(CHATS[0], text="still there?"), updates.message(CHATS[0], document=later)]
    )
    for doc in docs.values():
        await telegram.wait_download_started(doc["file_id"], timeout=REPLY_TIMEOUT_S)
    await telegram.wait_confirmed(ids[-1] + 1, timeout=REPLY_TIMEOUT_S)  # Telegram has forgotten them
    first.proc.send_signal(signal.SIGKILL)
    assert await first.wait_exit() == -signal.SIGKILL
    assert await object_keys(s3, bucket) == []
    assert telegram.pending_update_ids == []

    hold.set()
    await telegram.wait_polls_idle(timeout=REPLY_TIMEOUT_S)
    second = await launch(env)
    for chat in CHATS:
        await telegram.wait_for_text(chat, SAVED, timeout=REPLY_TIMEOUT_S)
    await telegram.wait_for_text(CHATS[0], SAVED, count=2, timeout=REPLY_TIMEOUT_S)

    for chat in CHATS:
        assert sum(SAVED in text for text in telegram.sent(chat)) == (2 if chat == CHATS[0] else 1)
        assert await object_body(s3, bucket, f"from {chat}.bin") == contents[chat]
    answers = [t for t in telegram.sent(CHATS[0]) if SAVED in t or "[document is required]" in t]
    assert [("later.txt" in t, "required" in t) for t in answers] == [
        (False, False),  # its first file, saved again from the start
        (False, True),  # the text it sent behind it
        (True, False),  # the file after the text
    ]
    assert len(await object_keys(s3, bucket)) == 4
    assert await no_multipart_uploads(s3, bucket)
    second.proc.send_signal(signal.SIGTERM)
    assert await second.wait_exit() == 0, second.stderr()
    second.assert_no_traceback()

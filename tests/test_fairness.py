"""No chat can stall the others: one chat's flood waits in the journal while other chats are answered."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import greet

FLOODER, OTHER = 61, 62
DEADLINE_S = 60


async def test_a_chat_forwarding_twenty_slow_files_does_not_hold_up_another_chat(
    start_bot: Callable[..., Awaitable[RunningBot]], telegram: FakeTelegram
) -> None:
    """With TGS3BOT_QUEUE_SIZE=10, 20 held documents from one chat leave room for another chat's text."""
    bot = await start_bot(queue_size=10)
    await greet(telegram, FLOODER, OTHER)
    hold = asyncio.Event()
    docs = [telegram.add_file(os.urandom(100_000), file_name=f"f{n:02}.bin", hold=hold) for n in range(20)]
    flood = telegram.add_updates([updates.message(FLOODER, document=doc) for doc in docs])
    await telegram.wait_download_started(docs[0]["file_id"], timeout=DEADLINE_S)
    await telegram.wait_confirmed(flood[-1] + 1, timeout=DEADLINE_S)  # all taken, none lost

    telegram.add_update(updates.message(OTHER, text="anyone there?"))
    await telegram.wait_for_text(OTHER, "[document is required]", timeout=DEADLINE_S)
    assert not any("[document has been saved]" in t for t in telegram.sent(FLOODER))  # still held

    hold.set()
    await telegram.wait_for_text(FLOODER, "[document has been saved]", count=20, timeout=DEADLINE_S)
    saved = [t for t in telegram.sent(FLOODER) if "[document has been saved]" in t]
    assert all(f"f{n:02}.bin" in text for n, text in enumerate(saved))  # in the order they were sent
    assert await bot.stop() == 0

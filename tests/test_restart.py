"""State in the SQLite file survives a restart: greetings, the files index, dialogs, handled update ids."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import button_data, greet, message_id_of, object_body, object_keys, reply_to, to_chat

StartBot = Callable[..., Awaitable[RunningBot]]


async def restart(telegram: FakeTelegram, start_bot: StartBot, first: RunningBot) -> RunningBot:
    """Stop ``first`` gracefully and start a new bot on the same settings (and so the same state file)."""
    assert await first.stop() == 0
    await telegram.wait_polls_idle()
    return await start_bot()


async def test_greetings_files_and_handled_updates_survive_a_restart(
    telegram: FakeTelegram, start_bot: StartBot, s3: Any, bucket: str
) -> None:
    """After a restart /start is not greeted again, /files lists the earlier save, a redelivery is skipped."""
    chat = 1
    first = await start_bot()
    await greet(telegram, chat)
    doc = telegram.add_file(os.urandom(3000), file_name="kept before restart.txt")
    document_update = updates.message(chat, document=doc)
    document_update_id = telegram.add_update(document_update)
    await telegram.wait_for_text(chat, "[document has been saved]")

    await restart(telegram, start_bot, first)
    since = len(telegram.calls)
    # Telegram sends the document update again (as after a crash before confirming), then new ones.
    telegram.add_updates(
        [
            {**document_update, "update_id": document_update_id},
            updates.message(chat, text="/start"),
            updates.message(chat, text="/files"),
        ]
    )

    def answers() -> list[str]:
        return [c.params["text"] for c in telegram.calls[since:] if to_chat(c, "sendMessage", chat)]

    await telegram.wait_for_call(lambda _: len(answers()) >= 2, since=since)
    after = answers()
    assert len(after) == 2, after  # the redelivered document got no answer; /start and /files did
    assert "[document is required]" in after[0] and "[greeting]" not in after[0]
    assert "kept before restart.txt" in after[1] and "[document" not in after[1]
    assert telegram.files[doc["file_id"]].downloads_started == 1
    assert await object_keys(s3, bucket) == ["kept before restart.txt"]


async def test_an_open_rename_dialog_survives_a_restart(
    telegram: FakeTelegram, start_bot: StartBot, s3: Any, bucket: str
) -> None:
    """A Rename pressed before a restart is completed by the name sent after it."""
    chat = 2
    first = await start_bot()
    await greet(telegram, chat)
    content = os.urandom(2000)
    since = len(telegram.calls)
    telegram.add_update(updates.message(chat, document=telegram.add_file(content)))
    saved = await telegram.wait_for_call(
        lambda c: to_chat(c, "sendMessage", chat) and "[document has been saved]" in c.params["text"],
        since=since,
    )
    press = updates.callback_query(chat, message_id_of(telegram, saved), button_data(saved, "Rename"))
    prompt = await reply_to(telegram, chat, press, "sendMessage")
    assert "file.bin" in prompt.params["text"] and "[document" not in prompt.params["text"]

    await restart(telegram, start_bot, first)
    answer = await reply_to(
        telegram, chat, updates.message(chat, text="renamed after restart.bin"), "sendMessage"
    )
    assert "[document has been renamed]" in answer.params["text"], answer.params["text"]
    assert "renamed after restart.bin" in answer.params["text"].splitlines()
    assert await object_keys(s3, bucket) == ["renamed after restart.bin"]
    assert await object_body(s3, bucket, "renamed after restart.bin") == content

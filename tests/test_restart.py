"""State in the SQLite file survives a restart: greetings, the files index, dialogs, handled update ids."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wire import Call

StartBot = Callable[..., Awaitable[RunningBot]]


def to_chat(call: Call, method: str, chat_id: int) -> bool:
    """Whether ``call`` is a successful ``method`` aimed at ``chat_id``."""
    return call.method == method and call.ok and str(call.params.get("chat_id")) == str(chat_id)


def message_id_of(telegram: FakeTelegram, call: Call) -> int:
    """The id the fake gave the message of a sendMessage call (ids go 1, 2, 3… over successful sends)."""
    sends = [c for c in telegram.calls if c.method == "sendMessage" and c.ok]
    return next(n for n, c in enumerate(sends, start=1) if c is call)


def button_data(call: Call, word: str) -> str:
    """The callback_data of the inline button whose text contains ``word``."""
    rows = (call.params.get("reply_markup") or {}).get("inline_keyboard", [])
    [data] = [b["callback_data"] for row in rows for b in row if word in b["text"]]
    return str(data)


async def next_message(telegram: FakeTelegram, chat_id: int, update: dict[str, Any]) -> Call:
    """Inject ``update`` and return the bot's next sendMessage to the chat."""
    since = len(telegram.calls)
    telegram.add_update(update)
    return await telegram.wait_for_call(lambda c: to_chat(c, "sendMessage", chat_id), since=since)


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
    telegram.add_update(updates.message(chat, text="/start"))
    await telegram.wait_for_text(chat, "[greeting]")
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
    objects = await s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in objects["Contents"]] == ["kept before restart.txt"]


async def test_an_open_rename_dialog_survives_a_restart(
    telegram: FakeTelegram, start_bot: StartBot, s3: Any, bucket: str
) -> None:
    """A Rename pressed before a restart is completed by the name sent after it."""
    chat = 2
    first = await start_bot()
    telegram.add_update(updates.message(chat, text="/start"))
    await telegram.wait_for_text(chat, "[greeting]")
    content = os.urandom(2000)
    since = len(telegram.calls)
    telegram.add_update(updates.message(chat, document=telegram.add_file(content)))
    saved = await telegram.wait_for_call(
        lambda c: to_chat(c, "sendMessage", chat) and "[document has been saved]" in c.params["text"],
        since=since,
    )
    press = updates.callback_query(chat, message_id_of(telegram, saved), button_data(saved, "Rename"))
    prompt = await next_message(telegram, chat, press)
    assert "file.bin" in prompt.params["text"] and "[document" not in prompt.params["text"]

    await restart(telegram, start_bot, first)
    answer = await next_message(telegram, chat, updates.message(chat, text="renamed after restart.bin"))
    assert "[document has been renamed]" in answer.params["text"], answer.params["text"]
    assert "renamed after restart.bin" in answer.params["text"].splitlines()
    objects = await s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in objects["Contents"]] == ["renamed after restart.bin"]
    stored = await s3.get_object(Bucket=bucket, Key="renamed after restart.bin")
    async with stored["Body"] as stream:
        assert await stream.read() == content

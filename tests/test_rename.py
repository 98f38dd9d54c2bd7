"""The rename dialog: button, question, new name, server-side move; refusals that lose nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from tests.fakes import updates
from tests.fakes.telegram import Call, FakeTelegram

pytestmark = pytest.mark.usefixtures("bot")


async def save(telegram: FakeTelegram, chat_id: int, content: bytes, name: str) -> Call:
    """Send a document and return the sendMessage call of its `[document has been saved]` reply."""
    doc = telegram.add_file(content, file_name=name, mime_type="text/plain")
    since = len(telegram.calls)
    telegram.add_update(updates.message(chat_id, document=doc))
    return await telegram.wait_for_call(
        lambda c: c.method == "sendMessage" and "[document has been saved]" in c.params.get("text", ""),
        since=since,
    )


def buttons(call: Call) -> dict[str, str]:
    """Button text → callback data of a message's inline keyboard."""
    markup = call.params.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def data_of(call: Call, word: str) -> str:
    return next(data for text, data in buttons(call).items() if word in text)


async def press(telegram: FakeTelegram, chat_id: int, call: Call, word: str) -> None:
    """Press the button whose text contains ``word`` (the message id does not matter to the bot)."""
    telegram.add_update(updates.callback_query(chat_id, 1, data_of(call, word)))


async def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in (await s3.list_objects_v2(Bucket=bucket)).get("Contents", []))


async def greet(telegram: FakeTelegram, *chats: int) -> None:
    for chat in chats:
        telegram.add_update(updates.message(chat, text="/start"))
        await telegram.wait_for_text(chat, "[greeting]")


async def test_saved_files_offer_rename_and_the_next_text_is_the_new_name(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """Rename button → question → name → object moved (same bytes, new disposition), old key gone."""
    await greet(telegram, 1)
    saved = await save(telegram, 1, b"contents", "draft.txt")
    assert any("Rename" in text for text in buttons(saved))
    await press(telegram, 1, saved, "Rename")
    await telegram.wait_for_text(1, "Send the new name")
    assert len(telegram.calls_of("answerCallbackQuery")) == 1
    telegram.add_update(updates.message(1, text="Итоговый отчёт (v2).txt"))
    texts = await telegram.wait_for_text(1, "[document has been renamed]")
    assert "Итоговый отчёт (v2).txt" in texts[-1].splitlines()
    assert await keys(s3, bucket) == ["Итоговый отчёт (v2).txt"]
    moved = await s3.get_object(Bucket=bucket, Key="Итоговый отчёт (v2).txt")
    async with moved["Body"] as stream:
        assert await stream.read() == b"contents"
    assert moved["ContentType"] == "text/plain"
    assert moved["Metadata"]["user-id"] == "1"
    assert unquote(moved["ContentDisposition"].split("UTF-8''")[1]) == "Итоговый отчёт (v2).txt"
    telegram.add_update(updates.message(1, text="and now?"))
    await telegram.wait_for_text(1, "[document is required]")  # the dialog is over


async def test_an_existing_name_is_never_overwritten(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """Renaming onto a key that exists is refused with [document has not been renamed]; both stay."""
    await greet(telegram, 2)
    await save(telegram, 2, b"one", "one.txt")
    saved = await save(telegram, 2, b"two", "two.txt")
    await press(telegram, 2, saved, "Rename")
    await telegram.wait_for_text(2, "Send the new name")
    telegram.add_update(updates.message(2, text="one.txt"))
    texts = await telegram.wait_for_text(2, "[document has not been renamed]")
    assert "already exists" in texts[-1]
    assert await keys(s3, bucket) == ["one.txt", "two.txt"]
    one = await s3.get_object(Bucket=bucket, Key="one.txt")
    async with one["Body"] as stream:
        assert await stream.read() == b"one"


async def test_unsafe_new_names_are_made_safe(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """The new name follows the upload rule: no nesting, no escaping the bucket root."""
    await greet(telegram, 3)
    saved = await save(telegram, 3, b"x", "plain.txt")
    await press(telegram, 3, saved, "Rename")
    await telegram.wait_for_text(3, "Send the new name")
    telegram.add_update(updates.message(3, text="../secret/plan.txt"))
    await telegram.wait_for_text(3, "[document has been renamed]")
    assert await keys(s3, bucket) == ["secret_plan.txt"]


async def test_cancel_ends_the_dialog(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """/cancel closes the question: the file keeps its name and the next text is a normal message."""
    await greet(telegram, 4)
    saved = await save(telegram, 4, b"x", "keep.txt")
    await press(telegram, 4, saved, "Rename")
    await telegram.wait_for_text(4, "Send the new name")
    telegram.add_updates([updates.message(4, text="/cancel"), updates.message(4, text="new.txt")])
    texts = await telegram.wait_for_text(4, "[document is required]")
    assert "Cancelled" in texts[-2]
    assert await keys(s3, bucket) == ["keep.txt"]


async def test_another_users_button_is_refused(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """A forged press of someone else's Rename button is refused and opens no dialog."""
    await greet(telegram, 5, 6)
    saved = await save(telegram, 5, b"x", "mine.txt")
    telegram.add_update(updates.callback_query(6, 1, data_of(saved, "Rename"), user_id=6))
    texts = await telegram.wait_for_text(6, "[document has not been renamed]")
    assert "only the files you saved" in texts[-1]
    telegram.add_update(updates.message(6, text="stolen.txt"))
    await telegram.wait_for_text(6, "[document is required]")
    assert await keys(s3, bucket) == ["mine.txt"]


async def test_a_stale_button_gets_a_clear_answer(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """A Rename for a file deleted from the bucket meanwhile is answered, not crashed on."""
    await greet(telegram, 7)
    saved = await save(telegram, 7, b"x", "vanishing.txt")
    await press(telegram, 7, saved, "Rename")
    await telegram.wait_for_text(7, "Send the new name")
    await s3.delete_object(Bucket=bucket, Key="vanishing.txt")
    telegram.add_update(updates.message(7, text="whatever.txt"))
    texts = await telegram.wait_for_text(7, "[document has not been renamed]")
    assert "no longer in the bucket" in texts[-1]
    assert await keys(s3, bucket) == []
    await press(telegram, 7, saved, "Rename")  # the index forgot it too
    texts = await telegram.wait_for_text(7, "[document has not been renamed]", count=2)
    assert "no longer known" in texts[-1]


async def test_garbage_callback_data_is_answered(telegram: FakeTelegram) -> None:
    """Made-up button data stops the spinner and changes nothing."""
    await greet(telegram, 8)
    telegram.add_update(updates.callback_query(8, 1, "rename:not-a-number"))
    await telegram.wait_for_text(8, "[document has not been renamed]")
    telegram.add_update(updates.callback_query(8, 1, "whatever"))
    await telegram.wait_for_call(lambda c: c.method == "answerCallbackQuery" and "no longer" in str(c.params))


async def test_keep_and_help(telegram: FakeTelegram) -> None:
    """Keep answers the press; /help explains and is not a [document is required] case."""
    await greet(telegram, 9)
    saved = await save(telegram, 9, b"x", "kept.txt")
    await press(telegram, 9, saved, "Keep")
    await telegram.wait_for_call(lambda c: c.method == "answerCallbackQuery")
    telegram.add_update(updates.message(9, text="/help"))
    texts = await telegram.wait_for_text(9, "/files")
    assert "[document is required]" not in texts[-1]

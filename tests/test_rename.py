"""The rename dialog: button, question, new name, server-side move; refusals that lose nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from tests.fakes import updates
from tests.fakes.telegram import Call, FakeTelegram
from tests.helpers import (
    button_data,
    buttons,
    greet,
    object_body,
    object_keys,
    press_answered,
    read_object,
)

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


async def press(telegram: FakeTelegram, chat_id: int, call: Call, word: str) -> None:
    """Press the button whose text contains ``word`` (the message id does not matter to the bot)."""
    telegram.add_update(updates.callback_query(chat_id, 1, button_data(call, word)))


async def ask_new_name(telegram: FakeTelegram, chat_id: int, content: bytes, name: str) -> Call:
    """Save a document, press its Rename button and wait for the question; return the saved reply."""
    saved = await save(telegram, chat_id, content, name)
    await press(telegram, chat_id, saved, "Rename")
    await telegram.wait_for_text(chat_id, "Send the new name")
    return saved


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
    assert await object_keys(s3, bucket) == ["Итоговый отчёт (v2).txt"]
    data, moved = await read_object(s3, bucket, "Итоговый отчёт (v2).txt")
    assert data == b"contents"
    assert moved["ContentType"] == "text/plain"
    assert moved["Metadata"]["user-id"] == "1"
    assert unquote(moved["ContentDisposition"].split("UTF-8''")[1]) == "Итоговый отчёт (v2).txt"
    telegram.add_update(updates.message(1, text="and now?"))
    await telegram.wait_for_text(1, "[document is required]")  # the dialog is over


async def test_an_existing_name_is_never_overwritten(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """Renaming onto a key that exists is refused with [document has not been renamed]; both stay."""
    await greet(telegram, 2)
    await save(telegram, 2, b"one", "one.txt")
    await ask_new_name(telegram, 2, b"two", "two.txt")
    telegram.add_update(updates.message(2, text="one.txt"))
    texts = await telegram.wait_for_text(2, "[document has not been renamed]")
    assert "already exists" in texts[-1]
    assert await object_keys(s3, bucket) == ["one.txt", "two.txt"]
    assert await object_body(s3, bucket, "one.txt") == b"one"


async def test_unsafe_new_names_are_made_safe(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """The new name follows the upload rule: no nesting, no escaping the bucket root."""
    await greet(telegram, 3)
    await ask_new_name(telegram, 3, b"x", "plain.txt")
    telegram.add_update(updates.message(3, text="../secret/plan.txt"))
    await telegram.wait_for_text(3, "[document has been renamed]")
    assert await object_keys(s3, bucket) == ["secret_plan.txt"]


async def test_cancel_ends_the_dialog(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """/cancel closes the question: the file keeps its name and the next text is a normal message."""
    await greet(telegram, 4)
    await ask_new_name(telegram, 4, b"x", "keep.txt")
    telegram.add_updates([updates.message(4, text="/cancel"), updates.message(4, text="new.txt")])
    texts = await telegram.wait_for_text(4, "[document is required]")
    assert "Cancelled" in texts[-2]
    assert await object_keys(s3, bucket) == ["keep.txt"]


async def test_another_users_button_is_refused(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """A forged press of someone else's Rename button is refused and opens no dialog."""
    await greet(telegram, 5, 6)
    saved = await save(telegram, 5, b"x", "mine.txt")
    telegram.add_update(updates.callback_query(6, 1, button_data(saved, "Rename"), user_id=6))
    texts = await telegram.wait_for_text(6, "[document has not been renamed]")
    assert "only the files you saved" in texts[-1]
    telegram.add_update(updates.message(6, text="stolen.txt"))
    await telegram.wait_for_text(6, "[document is required]")
    assert await object_keys(s3, bucket) == ["mine.txt"]


async def test_a_stale_button_gets_a_clear_answer(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """A Rename for a file deleted from the bucket meanwhile is answered, not crashed on."""
    await greet(telegram, 7)
    saved = await ask_new_name(telegram, 7, b"x", "vanishing.txt")
    await s3.delete_object(Bucket=bucket, Key="vanishing.txt")
    telegram.add_update(updates.message(7, text="whatever.txt"))
    texts = await telegram.wait_for_text(7, "[document has not been renamed]")
    assert "no longer in the bucket" in texts[-1]
    assert await object_keys(s3, bucket) == []
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


async def test_a_taken_name_keeps_the_question_open(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """After "that name is taken" the next text is the new name, not [document is required]."""
    await greet(telegram, 10)
    await save(telegram, 10, b"one", "taken.txt")
    await ask_new_name(telegram, 10, b"two", "mine.txt")
    telegram.add_update(updates.message(10, text="taken.txt"))
    texts = await telegram.wait_for_text(10, "[document has not been renamed]")
    assert "send another name or /cancel" in texts[-1].lower()
    telegram.add_update(updates.message(10, text="free.txt"))
    texts = await telegram.wait_for_text(10, "[document has been renamed]")
    assert "free.txt" in texts[-1].splitlines()
    assert not any("[document is required]" in t for t in texts)
    assert await object_keys(s3, bucket) == ["free.txt", "taken.txt"]
    assert await object_body(s3, bucket, "taken.txt") == b"one"
    telegram.add_update(updates.message(10, text="again.txt"))  # the question closed with the rename
    await telegram.wait_for_text(10, "[document is required]")


async def test_a_forged_rename_id_too_big_for_the_index_is_a_stale_button(telegram: FakeTelegram) -> None:
    """`rename:<57 digits>` is answered like an unknown file: spinner stopped, no apology, bot fine."""
    await greet(telegram, 11)
    for data in ("rename:" + "9" * 57, "rename:9223372036854775808", "rename:0", "rename:١٢"):
        await press_answered(telegram, 11, data)
    texts = await telegram.wait_for_text(11, "[document has not been renamed]", count=4)
    assert all("no longer known" in t for t in texts if "[document has not been renamed]" in t)
    assert not any("went wrong" in t for t in texts)
    telegram.add_update(updates.message(11, text="/files"))
    await telegram.wait_for_text(11, "No saved files")

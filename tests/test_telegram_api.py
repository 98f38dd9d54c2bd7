"""The tuned Bot API client: slim answer models and JSON requests, against the fake over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram
from tgs3bot.events import Button, Document, EventKind
from tgs3bot.platforms.telegram import TelegramPlatform
from tgs3bot.platforms.telegram_api import UpdateRef, to_event


def _event(update: dict[str, Any]) -> Any:
    return to_event(UpdateRef.model_validate({"update_id": 7, **update}))


def test_a_text_message() -> None:
    event = _event(updates.message(5, text="hello", message_id=40))
    assert event is not None
    assert (event.update_id, event.kind, event.chat_id, event.user_id) == (7, EventKind.MESSAGE, 5, 5)
    assert (event.private, event.message_id, event.text, event.document) == (True, 40, "hello", None)


def test_a_document_in_a_group() -> None:
    document = {"file_id": "f", "file_unique_id": "u", "file_name": "a.pdf", "mime_type": "application/pdf"}
    event = _event(
        updates.message(-100, user_id=2, chat_type="supergroup", document=document | {"file_size": 9})
    )
    assert event is not None
    assert (event.chat_id, event.user_id, event.private) == (-100, 2, False)
    assert event.document == Document(
        file_id="f", file_unique_id="u", file_name="a.pdf", mime_type="application/pdf", file_size=9
    )


def test_a_document_with_only_its_ids() -> None:
    event = _event(updates.message(1, document={"file_id": "f", "file_unique_id": "u"}))
    assert event is not None
    assert event.document == Document(
        file_id="f", file_unique_id="u", file_name=None, mime_type=None, file_size=None
    )


def test_a_button_press() -> None:
    event = _event(updates.callback_query(5, 12, "rename:3", user_id=6))
    assert event is not None
    assert (event.kind, event.chat_id, event.user_id, event.message_id) == (EventKind.CALLBACK, 5, 6, 12)
    assert event.callback_data == "rename:3" and event.callback_id


@pytest.mark.parametrize(
    "update",
    [updates.edited_message(1, message_id=5, text="new"), updates.my_chat_member(1)],
    ids=["edited_message", "my_chat_member"],
)
def test_kinds_the_bot_does_not_handle(update: dict[str, Any]) -> None:
    assert _event(update) is None


def test_fields_the_bot_does_not_read_are_ignored() -> None:
    update = updates.message(1, text="hi", photo=True)
    update["message"]["some_future_field"] = {"nested": [1, 2]}
    event = _event(update)
    assert event is not None and event.text == "hi" and event.document is None


@pytest.fixture
async def platform(telegram: FakeTelegram) -> AsyncIterator[TelegramPlatform]:
    client = TelegramPlatform(TOKEN, api_url=telegram.base_url)
    try:
        yield client
    finally:
        await client.close()


async def test_calls_go_as_json_with_nested_objects(
    telegram: FakeTelegram, platform: TelegramPlatform
) -> None:
    message_id = await platform.send_text(5, "saved", reply_to=3, buttons=((Button("Rename", "rename:1"),),))
    [call] = telegram.calls_of("sendMessage")
    assert call.content_type == "application/json"
    assert (call.params["chat_id"], call.params["text"]) == ("5", "saved")
    assert call.params["reply_parameters"] == {"message_id": 3, "allow_sending_without_reply": True}
    assert call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Rename", "callback_data": "rename:1"}]]
    }
    assert message_id is not None and message_id > 0


async def test_get_updates_answers_events(telegram: FakeTelegram, platform: TelegramPlatform) -> None:
    first, second = telegram.add_updates(
        [updates.message(5, text="a"), updates.callback_query(5, 9, "keep:1")]
    )
    batch = await platform.get_updates(None, 0)
    assert [(e.update_id, e.kind) for e in batch.events] == [
        (first, EventKind.MESSAGE),
        (second, EventKind.CALLBACK),
    ]
    assert batch.next_offset == second + 1

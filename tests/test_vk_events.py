"""VK long-poll events as the bot's events, and the bot's keyboards as VK's: pure functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tgs3bot.events import Button, Document, EventKind
from tgs3bot.platforms import vk_events
from tgs3bot.platforms.vk_api import RandomIds

USER = 501


def doc(doc_id: int = 7, *, title: str = "report.pdf", ext: str = "pdf", size: int = 1234) -> dict[str, Any]:
    """A ``doc`` attachment as VK sends it."""
    fields = {"id": doc_id, "owner_id": USER, "title": title, "size": size, "ext": ext, "type": 1}
    return {"type": "doc", "doc": fields | {"url": f"https://vk.com/doc{USER}_{doc_id}?hash=abc&dl=1"}}


def message_new(
    text: str = "",
    attachments: list[dict[str, Any]] | None = None,
    *,
    peer_id: int = USER,
    from_id: int = USER,
) -> dict[str, Any]:
    """A ``message_new`` long-poll update (API 5.199: the message wrapped with client_info)."""
    message = {
        "id": 40,
        "peer_id": peer_id,
        "from_id": from_id,
        "text": text,
        "conversation_message_id": 12,
        "attachments": attachments or [],
    }
    obj = {"message": message, "client_info": {"inline_keyboard": True}}
    return {"type": "message_new", "event_id": "ab" * 20, "v": "5.199", "object": obj, "group_id": 1}


def message_event(payload: Any, *, peer_id: int = USER) -> dict[str, Any]:
    """A ``message_event`` update: a callback button pressed under message 9."""
    obj = {
        "user_id": USER,
        "peer_id": peer_id,
        "event_id": "3159dc190b1f",
        "payload": payload,
        "conversation_message_id": 9,
    }
    return {"type": "message_event", "event_id": "cd" * 20, "object": obj, "group_id": 1}


def test_private_text_message() -> None:
    """A text in a user's dialog is one private MESSAGE event of platform vk, ids from VK's."""
    (event,) = vk_events.to_events(message_new("/files"))
    assert (event.platform, event.kind, event.private) == ("vk", EventKind.MESSAGE, True)
    assert (event.chat_id, event.user_id, event.message_id) == (USER, USER, 12)
    assert (event.text, event.command, event.document) == ("/files", "/files", None)


def test_group_chat_message_is_not_private() -> None:
    """A message in a group chat (peer id from 2e9) is not private, so the router ignores it."""
    (event,) = vk_events.to_events(message_new("hi", peer_id=2_000_000_003))
    assert (event.chat_id, event.user_id, event.private) == (2_000_000_003, USER, False)


def test_doc_is_a_document() -> None:
    """A doc attachment becomes the event's document: title as the name, URL to download, size."""
    (event,) = vk_events.to_events(message_new(attachments=[doc()]))
    assert event.document == Document(
        file_id=f"https://vk.com/doc{USER}_7?hash=abc&dl=1",
        file_unique_id=f"{USER}_7",
        file_name="report.pdf",
        mime_type="application/pdf",
        file_size=1234,
    )
    assert event.text is None


def test_mime_type_falls_back_to_ext() -> None:
    """A title without a suffix keeps its name; the MIME type comes from ``ext``."""
    (event,) = vk_events.to_events(message_new(attachments=[doc(title="notes", ext="txt")]))
    assert event.document is not None
    assert (event.document.file_name, event.document.mime_type) == ("notes", "text/plain")


@pytest.mark.parametrize("kind", ["photo", "sticker", "audio_message", "video", "wall", "link"])
def test_other_attachments_are_not_documents(kind: str) -> None:
    """Photos, stickers, voice and video messages are not documents: one event without a document."""
    (event,) = vk_events.to_events(message_new(attachments=[{"type": kind, kind: {"id": 1}}]))
    assert event.document is None


def test_several_docs_are_one_event_each_with_distinct_stable_ids() -> None:
    """Each doc of a message is its own event, in order; ids differ, and a redelivery maps the same."""
    update = message_new(
        "caption", [doc(1, title="a.txt"), {"type": "photo", "photo": {}}, doc(2, title="b.txt")]
    )
    events = vk_events.to_events(update)
    assert [e.document.file_name for e in events if e.document] == ["a.txt", "b.txt"]
    assert len({e.update_id for e in events}) == 2
    assert all(e.text is None for e in events)  # the text of a message with docs is their caption
    assert vk_events.to_events(json.loads(json.dumps(update))) == events


def test_update_ids_come_from_event_id() -> None:
    """Update ids are 60-bit, equal for one event_id and different for another."""
    first = vk_events.update_id(message_new())
    other = vk_events.update_id(message_new() | {"event_id": "ef" * 20})
    assert first == vk_events.update_id(message_new("anything else"))
    assert first != other
    assert 0 < first < 2**60 and first % 16 == 0


def test_update_without_event_id_hashes_its_content() -> None:
    """An update without event_id (old API versions) still gets a stable id from its content."""
    update = message_new("x")
    del update["event_id"]
    assert vk_events.update_id(update) == vk_events.update_id(dict(update))
    assert vk_events.update_id(update) != vk_events.update_id(message_new("y") | {"event_id": ""})


def test_bare_message_of_old_api_versions() -> None:
    """An object that is the message itself (Long Poll API before 5.103) is read too."""
    update = message_new("hello")
    update["object"] = update["object"]["message"]
    (event,) = vk_events.to_events(update)
    assert event.text == "hello"


def test_callback_press() -> None:
    """A callback press is a CALLBACK in the peer, naming what sendMessageEventAnswer needs."""
    (event,) = vk_events.to_events(message_event({"d": "rn:42"}))
    assert (event.kind, event.chat_id, event.user_id, event.private) == (EventKind.CALLBACK, USER, USER, True)
    assert (event.message_id, event.callback_data, event.platform) == (9, "rn:42", "vk")
    assert event.callback_id is not None
    assert vk_events.parse_callback_id(event.callback_id) == ("3159dc190b1f", USER, USER)


@pytest.mark.parametrize("payload", [{"other": 1}, "not json", None, {"d": 5}, '{"d": "rn:1"}'])
def test_foreign_payloads(payload: Any) -> None:
    """A payload the bot did not write has no data (a stale button); a JSON string is read."""
    (event,) = vk_events.to_events(message_event(payload))
    assert event.callback_data == ("rn:1" if payload == '{"d": "rn:1"}' else None)


@pytest.mark.parametrize("kind", ["message_reply", "message_edit", "message_typing_state", "group_join"])
def test_other_updates_are_ignored(kind: str) -> None:
    """Updates the bot does not handle map to no event."""
    assert vk_events.to_events({"type": kind, "event_id": "00", "object": {"peer_id": 1}}) == ()


def test_keyboard_is_inline_callback_buttons() -> None:
    """A keyboard becomes VK's inline keyboard JSON of callback buttons carrying the data."""
    board = json.loads(vk_events.keyboard(((Button("✏️ Rename", "rn:1"), Button("Keep", "kp:1")),)))
    assert board["inline"] is True
    actions = [b["action"] for b in board["buttons"][0]]
    assert actions == [
        {"type": "callback", "label": "✏️ Rename", "payload": '{"d":"rn:1"}'},
        {"type": "callback", "label": "Keep", "payload": '{"d":"kp:1"}'},
    ]
    assert vk_events.payload_data(actions[0]["payload"]) == "rn:1"


def test_keyboard_keeps_within_vk_limits() -> None:
    """Labels are cut to 40 characters; at most 5 a row, 6 rows and 10 buttons in all."""
    long_row = tuple(Button("x" * 50, f"d{n}") for n in range(7))
    board = json.loads(vk_events.keyboard((long_row,) * 8))
    rows = board["buttons"]
    assert [len(row) for row in rows] == [5, 5]
    assert all(len(b["action"]["label"]) == 40 for row in rows for b in row)


def test_random_ids_are_unique_signed_32_bit_and_never_zero() -> None:
    """random_ids count up from a random start, wrap within signed 32 bits and skip 0."""
    ids = RandomIds(start=2**32 - 2)
    taken = [ids.take() for _ in range(4)]
    assert taken == [-2, -1, 1, 2]
    fresh = RandomIds()
    assert len({fresh.take() for _ in range(1000)}) == 1000

"""VK's Bots Long Poll events as the bot's own ``Event``s, and its keyboards from ours: pure functions.

- ``message_new`` → one MESSAGE event, or one per ``doc`` attachment (a message may carry up to
  ten): each doc is saved on its own, in the order attached. The text of a message with docs is
  their caption and is not read, as on Telegram, where a document's caption is not the message
  text (so a doc sent with "/files" typed beside it is saved, not listed).
- ``message_event`` (a callback button pressed) → one CALLBACK event in the chat of the message
  the button hangs on.
- Anything else (edits, typing, joins) → nothing.

Chat ids are VK peer ids and message ids are ``conversation_message_id``s: a callback names only
that id of the message it hangs on, and ``messages.edit`` and replies (``forward``) take it too,
in private dialogs and group chats alike.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from typing import Any

import orjson

from tgs3bot.events import Document, Event, EventKind, Keyboard

PLATFORM = "vk"
CHAT_PEER_START = 2_000_000_000  # peer ids from here on are group chats ("беседы")
MAX_DOCS = 16  # the low 4 bits of an update id number the docs of one message (VK allows 10)
# VK's inline keyboards: at most 6 rows of at most 5 buttons, 10 buttons in all; a label of at
# most 40 characters and a payload of at most 255.
MAX_ROWS, MAX_ROW_BUTTONS, MAX_BUTTONS = 6, 5, 10
MAX_LABEL, MAX_PAYLOAD = 40, 255


def update_id(update: Mapping[str, Any]) -> int:
    """A stable 60-bit id for a long-poll event; its docs add their index in the low 4 bits.

    VK redelivers an event with the same ``event_id`` when the bot polls again from an older ``ts``
    (after a crash, before the cursor moved), so the id is a hash of ``event_id``: the same event
    maps to the same id and the handled-ids record skips it. Not ``ts`` + index: ``ts`` is only a
    position, and ``failed: 3`` may start it afresh, so a new event could take a handled event's id
    and be dropped. 56 bits of BLAKE2b make a collision among a week of handled ids (their
    retention) negligible (one in ~10^5 at a million events a week), and the id fits the signed
    64-bit integers of SQLite and Redis. An event without ``event_id`` (older Long Poll API
    versions) hashes its own canonical JSON, which is as stable.
    """
    event_id = update.get("event_id")
    source = event_id.encode() if isinstance(event_id, str) and event_id else _canonical(update)
    digest = hashlib.blake2b(source, digest_size=7).digest()
    return int.from_bytes(digest, "big") << 4


def to_events(update: Mapping[str, Any]) -> tuple[Event, ...]:
    """The bot's events for one long-poll update (none for kinds the bot does not handle)."""
    kind, obj = update.get("type"), update.get("object")
    if not isinstance(obj, Mapping):
        return ()
    if kind == "message_new":
        message = obj.get("message", obj)  # API 5.103+ wraps it with client_info; older sent it bare
        return _message_events(message, update_id(update)) if isinstance(message, Mapping) else ()
    if kind == "message_event":
        return (_callback_event(obj, update_id(update)),)
    return ()


def _message_events(message: Mapping[str, Any], base_id: int) -> tuple[Event, ...]:
    peer_id = int(message["peer_id"])
    from_id = int(message.get("from_id", peer_id))
    fields: dict[str, Any] = {
        "kind": EventKind.MESSAGE,
        "chat_id": peer_id,
        "user_id": from_id,
        "private": is_private(peer_id, from_id),
        "message_id": int(message.get("conversation_message_id") or 0),
        "platform": PLATFORM,
    }
    docs = [to_document(a["doc"]) for a in message.get("attachments") or () if _is_doc(a)]
    if not docs:
        return (Event(update_id=base_id, text=message.get("text") or None, **fields),)
    return tuple(Event(update_id=base_id | n, document=d, **fields) for n, d in enumerate(docs[:MAX_DOCS]))


def _callback_event(obj: Mapping[str, Any], base_id: int) -> Event:
    peer_id, user_id = int(obj["peer_id"]), int(obj["user_id"])
    return Event(
        update_id=base_id,
        kind=EventKind.CALLBACK,
        chat_id=peer_id,
        user_id=user_id,
        private=is_private(peer_id, user_id),
        message_id=int(obj.get("conversation_message_id") or 0),
        callback_id=callback_id(str(obj["event_id"]), user_id, peer_id),
        callback_data=payload_data(obj.get("payload")),
        platform=PLATFORM,
    )


def is_private(peer_id: int, from_id: int) -> bool:
    """A user's dialog with the community: the peer is the user (group chats start at 2e9)."""
    return peer_id == from_id and 0 < peer_id < CHAT_PEER_START


def _is_doc(attachment: Any) -> bool:
    return (
        isinstance(attachment, Mapping)
        and attachment.get("type") == "doc"
        and isinstance(attachment.get("doc"), Mapping)
    )


def to_document(doc: Mapping[str, Any]) -> Document:
    """A ``doc`` attachment: its title is the file name, its URL what ``open_file`` downloads.

    VK gives no MIME type, so it is guessed from the title, else from ``ext``.
    """
    title = str(doc.get("title") or "") or None
    ext = str(doc.get("ext") or "")
    mime = mimetypes.guess_type(title or "", strict=False)[0] if title else None
    if mime is None and ext:
        mime = mimetypes.guess_type(f"file.{ext}", strict=False)[0]
    size = doc.get("size")
    return Document(
        file_id=str(doc.get("url") or ""),
        file_unique_id=f"{doc.get('owner_id')}_{doc.get('id')}",
        file_name=title,
        mime_type=mime,
        file_size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
    )


def callback_id(event_id: str, user_id: int, peer_id: int) -> str:
    """What ``messages.sendMessageEventAnswer`` needs, in one string: ``event_id:user_id:peer_id``."""
    return f"{event_id}:{user_id}:{peer_id}"


def parse_callback_id(value: str) -> tuple[str, int, int]:
    """``callback_id``'s parts; ``ValueError`` for anything else."""
    event_id, user_id, peer_id = value.rsplit(":", 2)
    return event_id, int(user_id), int(peer_id)


def payload_data(payload: Any) -> str | None:
    """The button data in a callback's payload (``{"d": data}``, as ``keyboard`` writes it)."""
    if isinstance(payload, str | bytes):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
    data = payload.get("d") if isinstance(payload, Mapping) else None
    return data if isinstance(data, str) else None


def keyboard(buttons: Keyboard) -> str:
    """An inline VK keyboard of callback buttons, as the JSON ``messages.send`` takes.

    Within VK's limits: labels cut to 40 characters, rows to 5 buttons, at most 6 rows and 10
    buttons; a button whose payload would exceed 255 characters is left out (the bot's data is at
    most 64 bytes, so none is).
    """
    rows: list[list[dict[str, Any]]] = []
    count = 0
    for row in buttons[:MAX_ROWS]:
        out = []
        for button in row[:MAX_ROW_BUTTONS]:
            payload = orjson.dumps({"d": button.data}).decode()
            if len(payload) > MAX_PAYLOAD or count == MAX_BUTTONS:
                continue
            label = button.text if len(button.text) <= MAX_LABEL else button.text[: MAX_LABEL - 1] + "…"
            out.append({"action": {"type": "callback", "label": label, "payload": payload}})
            count += 1
        if out:
            rows.append(out)
    return orjson.dumps({"inline": True, "buttons": rows}).decode()


def _canonical(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

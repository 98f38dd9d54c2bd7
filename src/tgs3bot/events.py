"""Platform-neutral updates: what the poller queues and the handlers read.

A platform adapter (Telegram, VK) turns its raw updates into these frozen dataclasses,
so the queue, the worker and the handlers never depend on one platform's types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson


class EventKind(enum.Enum):
    """What an update is, as far as the bot's routing cares."""

    MESSAGE = "message"
    CALLBACK = "callback"


@dataclass(frozen=True, slots=True)
class Document:
    """A file attached to a message as a document (never a photo, sticker, voice or video)."""

    file_id: str
    file_unique_id: str
    file_name: str | None
    mime_type: str | None
    file_size: int | None


ChatKey = tuple[str, int]  # (platform, chat id): a chat's identity across platforms (SPEC §6)
UserKey = tuple[str, int]  # (platform, user id): who someone is, across platforms


@dataclass(frozen=True, slots=True)
class Event:
    """One update the bot must handle, in the order of its chat."""

    update_id: int
    kind: EventKind
    chat_id: int
    user_id: int
    private: bool
    message_id: int
    text: str | None = None
    document: Document | None = None
    callback_id: str | None = None
    callback_data: str | None = None
    # Last, with a default: journal entries and Redis bodies written before VK existed read as
    # Telegram's. Chat, user and update ids are numbers within one platform (SPEC §6).
    platform: str = "telegram"

    @property
    def chat(self) -> ChatKey:
        """The chat across platforms: what per-chat order, dialogs and greetings are kept by."""
        return (self.platform, self.chat_id)

    @property
    def user(self) -> UserKey:
        """The sender across platforms: what owns a saved file."""
        return (self.platform, self.user_id)

    @property
    def command(self) -> str | None:
        """The bot command that starts the text (``/help`` for ``/help@my_bot please``), if any."""
        if not self.text or not self.text.startswith("/"):
            return None
        word = self.text.split(maxsplit=1)[0]
        return word.split("@", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: what it says, and the data its press sends back (at most 64 bytes)."""

    text: str
    data: str


Keyboard = tuple[tuple[Button, ...], ...]  # rows of buttons


@dataclass(frozen=True, slots=True)
class UpdateBatch:
    """What one poll returned: the events to handle and the offset that confirms the whole batch.

    ``next_offset`` also covers updates the bot ignores (edited messages, chat member changes), so
    they are confirmed without being queued.
    """

    events: tuple[Event, ...]
    next_offset: int | None


def to_json(event: Event) -> bytes:
    """The event as one JSON object: what the journal and Redis keep of an update."""
    return orjson.dumps(event)  # orjson writes dataclasses and enums natively


def from_json(data: bytes | str) -> Event:
    """The event ``to_json`` wrote."""
    fields: dict[str, Any] = orjson.loads(data)
    fields["kind"] = EventKind(fields["kind"])
    if fields.get("document") is not None:
        fields["document"] = Document(**fields["document"])
    return Event(**fields)

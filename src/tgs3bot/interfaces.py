"""The seams between the layers: small Protocols with one implementation each today.

- ``Platform``: the messaging platform's client (Telegram now; VK bots later).
- ``UpdateQueue``: where the poller leaves updates for the workers (in-process now; Redis Streams
  later, for several worker processes).
- ``StateStore``: what the bot remembers about chats (memory now; SQLite and Redis later).
- ``ObjectStore``: where documents go (S3 through aioboto3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from tgs3bot.events import Document, Event, UpdateBatch


class Platform(Protocol):
    """A messaging platform's client, as the poller and the handlers use it."""

    async def get_updates(self, offset: int | None, timeout_s: int) -> UpdateBatch:
        """Long-poll for updates after ``offset``; the only call that may take ``timeout_s``."""
        ...

    async def send_text(self, chat_id: int, text: str, *, reply_to: int | None = None) -> int | None:
        """Send a plain-text message; return its id, or None if it can never be delivered."""
        ...

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """Stop the spinner on the button the user pressed."""
        ...

    def open_file(self, document: Document) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Open the document's bytes as a stream of chunks (raises ``FileUnavailable``)."""
        ...


class UpdateQueue(Protocol):
    """A bounded queue that hands out one chat's events in order, and different chats in parallel."""

    async def put(self, event: Event) -> None:
        """Add an event; wait while the queue is full (backpressure on the poller)."""
        ...

    async def get(self) -> Event:
        """Take the next event of a chat that has no event in progress."""
        ...

    def task_done(self, event: Event) -> None:
        """Mark the event handled, which frees its chat for the next event."""
        ...

    async def join(self) -> None:
        """Wait until every event put so far is handled."""
        ...

    def unfinished(self) -> list[Event]:
        """The events put and not yet marked handled, in progress or waiting."""
        ...


class StateStore(Protocol):
    """What the bot remembers between updates."""

    async def is_greeted(self, chat_id: int) -> bool:
        """Whether the chat has been greeted already."""
        ...

    async def mark_greeted(self, chat_id: int) -> None:
        """Remember that the chat has been greeted."""
        ...


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What the bucket knows about a saved object."""

    key: str
    size: int
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What is written along with an object's bytes."""

    content_type: str
    content_disposition: str
    metadata: Mapping[str, str]


class ObjectStore(Protocol):
    """The bucket, as the document handlers use it."""

    async def head(self, key: str) -> StoredObject | None:
        """The object under ``key``, or None if there is none."""
        ...

    async def save(
        self, key: str, chunks: AsyncIterator[bytes], info: ObjectInfo, expected_size: int | None
    ) -> int:
        """Stream ``chunks`` into ``key``; return the byte count. Leaves nothing behind on failure."""
        ...

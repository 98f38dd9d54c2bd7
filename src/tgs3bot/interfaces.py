"""The seams between the layers: small Protocols with one implementation each today.

- ``Platform``: a messaging platform's client (Telegram, VK communities).
- ``UpdateQueue``: where the poller leaves updates for the workers (in-process and journaled, or
  Redis Streams for several worker processes); ``Journal``: the in-process queue's durable half.
- ``StateStore``: what the bot remembers (SQLite by default, memory for tests, Redis).
- ``storage.base.ObjectStore``: where documents go (S3 through aioboto3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import NoReturn, Protocol, Self

from tgs3bot.events import ChatKey, Document, Event, Keyboard, UpdateBatch, UserKey


class Platform(Protocol):
    """A messaging platform's client, as the poller and the handlers use it."""

    name: str  # "telegram", "vk": what ``Event.platform`` says of the events it returns

    async def start(self) -> None:
        """Check the credentials and prepare polling; raise ``errors.StartupError`` (one line)."""
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...

    async def get_updates(self, offset: int | None, timeout_s: int, limit: int = 100) -> UpdateBatch:
        """Long-poll for up to ``limit`` updates after ``offset`` (the only call that may be slow)."""
        ...

    async def send_text(
        self, chat_id: int, text: str, *, reply_to: int | None = None, buttons: Keyboard | None = None
    ) -> int | None:
        """Send a plain-text message; return its id, or None if it can never be delivered."""
        ...

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, *, buttons: Keyboard | None = None
    ) -> bool:
        """Replace a message's text (and buttons); False if the platform would not edit it."""
        ...

    async def set_commands(self, commands: Sequence[tuple[str, str]]) -> None:
        """Register the command menu: (command without the slash, description) pairs."""
        ...

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """Stop the spinner on the button the user pressed."""
        ...

    def open_file(self, document: Document) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Open the document's bytes as a stream of chunks (raises ``FileUnavailable``)."""
        ...


class UpdateQueue(Protocol):
    """Where taken updates wait: one chat's events in order, different chats in parallel.

    Implementations: ``queues.ChatQueue`` (in-process, journaled in the state file) and
    ``queues.RedisQueue`` (Redis Streams, shared by several processes). Both are async context
    managers: entering restores what an earlier run left unfinished, leaving hands back what this
    process took and did not finish.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def put_batch(self, events: Sequence[Event]) -> None:
        """Take one poll's events; they are durable when this returns (the next poll confirms them).

        An event already taken (a redelivery) is kept once. Never waits for room: see
        ``wait_for_room``.
        """
        ...

    async def wait_for_room(self) -> int:
        """Wait until the queue can take another batch (the poller's backpressure); return its size."""
        ...

    async def get(self) -> Event:
        """Take the next event of a chat that has no event in progress."""
        ...

    async def task_done(self, event: Event) -> None:
        """The event is finished (handled, or failed and apologised for): forget it for good.

        Not called for an event whose handling was cancelled: that one stays to be handled again.
        """
        ...

    async def drain(self) -> None:
        """Wait until what a graceful stop must finish is finished.

        In-process: every event taken so far. Redis: the events this process holds (others stay
        in Redis for the other workers); ``get`` hands out nothing new from then on.
        """
        ...

    def unfinished(self) -> list[Event]:
        """The events this process holds and has not finished, in progress or waiting."""
        ...


class Journal(Protocol):
    """Durable storage of taken updates until they are handled (SPEC §5, the embedded default).

    ``seq`` numbers entries in the order they were taken (update ids may restart from a random
    value, so they cannot order anything).
    """

    async def append(self, events: Sequence[Event]) -> list[tuple[int, Event]]:
        """Write the events in one transaction; return the new ones with their ``seq``."""
        ...

    async def entries(
        self, chat: ChatKey | None = None, *, after_seq: int = 0, limit: int = -1
    ) -> list[tuple[int, Event]]:
        """Entries in ``seq`` order: all of them, or one chat's after ``after_seq`` (at most ``limit``)."""
        ...

    async def remove(self, platform: str, update_id: int) -> None:
        """Forget a finished update (written with the next batch of marks, at the latest at close)."""
        ...


class KeyLocking(Protocol):
    """Locks per object key: two saves (or a save and a rename) of one key never overlap.

    ``context.KeyLocks`` in one process; ``redis_locks.RedisKeyLocks`` across processes.
    """

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold the key's lock for the block."""
        ...


class PollerLeasing(Protocol):
    """Who may poll, where several pollers run (``lease.PollerLease`` in Redis)."""

    async def acquire(self) -> None:
        """Wait until this process holds the lease (a standby waits here)."""
        ...

    async def keep(self) -> NoReturn:
        """Renew the lease until cancelled; raise ``errors.LeaseLost`` once it is lost."""
        ...

    async def release(self) -> bool:
        """Give the lease up so a standby takes over at once; True if this process held it."""
        ...


@dataclass(frozen=True, slots=True)
class SavedFile:
    """One entry of the bot's index of what it saved (S3 lists keys by name and knows no owner)."""

    id: int  # stable across renames and re-saves of the same key; what buttons refer to
    key: str
    owner_id: int
    chat_id: int
    size: int
    saved_at: float  # Unix time, seconds
    platform: str  # where owner_id and chat_id are ids ("telegram", "vk")

    @property
    def owner(self) -> UserKey:
        """Who saved it, across platforms."""
        return (self.platform, self.owner_id)


@dataclass(frozen=True, slots=True)
class Dialog:
    """A question the bot asked a chat and waits to have answered (today: the new name of a file)."""

    kind: str  # "rename"
    file_id: int
    started_at: float  # Unix time, seconds


class StateStore(Protocol):
    """What the bot remembers between updates and across restarts.

    Implementations: ``MemoryState`` (tests), ``SqliteState`` (the default) and ``RedisState``.
    Every method is a short, atomic operation; the worker's per-chat ordering makes read-then-write
    safe per chat. Chat, user and update ids are numbers within a platform, so each comes with
    its platform (SPEC §6): a VK peer 5 and a Telegram chat 5 never share a mark or a dialog.
    It is an async context manager: entering opens it, leaving closes it.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def is_greeted(self, platform: str, chat_id: int) -> bool:
        """Whether the chat has been greeted already."""
        ...

    async def mark_greeted(self, platform: str, chat_id: int) -> None:
        """Remember that the chat has been greeted."""
        ...

    async def is_handled(self, platform: str, update_id: int) -> bool:
        """Whether the update was handled already (a redelivered update is skipped)."""
        ...

    async def mark_handled(self, platform: str, update_id: int) -> None:
        """Remember that the update was handled."""
        ...

    async def get_dialog(self, platform: str, chat_id: int) -> Dialog | None:
        """The chat's open dialog, if any."""
        ...

    async def set_dialog(self, platform: str, chat_id: int, dialog: Dialog | None) -> None:
        """Open (or replace) the chat's dialog; None closes it."""
        ...

    async def record_file(
        self, key: str, *, platform: str, owner_id: int, chat_id: int, size: int, saved_at: float
    ) -> SavedFile:
        """Index a saved object; saving the same key again updates its entry and keeps its id."""
        ...

    async def get_file(self, file_id: int) -> SavedFile | None:
        """The index entry with that id, if any."""
        ...

    async def rename_file(self, file_id: int, new_key: str) -> None:
        """Record that the object moved to ``new_key`` (which replaces any entry of that key)."""
        ...

    async def forget_file(self, file_id: int) -> None:
        """Drop the entry (the object is gone from the bucket)."""
        ...

    async def set_file_unique_id(self, platform: str, file_id: int, file_unique_id: str | None) -> None:
        """Note which of the platform's files the entry's object holds (None: not known).

        A note is its platform's (a VK doc's id means nothing to Telegram): ids unknown, or of
        another platform's entry, are ignored. ``record_file`` keeps the note when the key is saved
        again from the same platform (a save writes it next) and drops it from another platform.
        """
        ...

    async def find_files_by_unique_id(
        self, platform: str, file_unique_id: str, *, limit: int
    ) -> list[SavedFile]:
        """At most ``limit`` of the platform's entries noted as holding that file, anyone's, newest first."""
        ...

    async def list_files(
        self,
        owner: UserKey | None,
        *,
        limit: int,
        before: tuple[float, int] | None = None,
        after: tuple[float, int] | None = None,
    ) -> tuple[list[SavedFile], bool, int]:
        """A page of at most ``limit`` entries, newest first; ``owner=None`` lists everyone's.

        The order is ``(saved_at, id)`` descending, and a cursor is one entry's ``(saved_at, id)``
        (that entry need not exist any more): ``before`` gives the entries just older than it,
        ``after`` the entries just newer than it; with neither, the newest. Paging by cursor, not
        by offset, means an entry dropped or added meanwhile never shifts another one out of view.
        Returns the page, whether more entries lie beyond it in the direction paged (older for
        ``before`` and the first page, newer for ``after``), and the total.
        """
        ...

    async def get_cursor(self, platform: str) -> str | None:
        """Where the platform's poller stopped reading (VK's long-poll ``ts``), if it was saved."""
        ...

    async def set_cursor(self, platform: str, value: str) -> None:
        """Save the platform's read position (durable when this returns)."""
        ...

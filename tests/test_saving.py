"""The document handler's units: the key's lock around the put and the index, shutdown after the put."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from tests.helpers import WatchedLocks, make_event
from tgs3bot.context import Context, Policy
from tgs3bot.errors import TransferError
from tgs3bot.events import Document, Event, Keyboard
from tgs3bot.handlers.documents import RENAME_PREFIX, save_document
from tgs3bot.handlers.saving import Save
from tgs3bot.interfaces import Platform, SavedFile
from tgs3bot.state import MemoryState
from tgs3bot.storage.base import ObjectInfo, ObjectStore, ReplaceCheck, SaveResult, StoredObject

DEADLINE_S = 60  # a deadline for a hang, not an expectation
CONTENT = b"the file's bytes"


class _Chat:
    """A Platform that serves one file and keeps what the handler sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Keyboard | None]] = []

    async def send_text(self, chat_id: int, text: str, *, buttons: Keyboard | None = None, **_: Any) -> int:
        self.sent.append((text, buttons))
        return len(self.sent)

    async def edit_text(self, chat_id: int, message_id: int, text: str, **_: Any) -> bool:
        return True

    @asynccontextmanager
    async def open_file(self, document: Document) -> AsyncIterator[AsyncIterator[bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            yield CONTENT

        yield chunks()


class _Bucket:
    """An in-memory ObjectStore (only ``save``)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def save(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        info: ObjectInfo,
        expected_size: int | None,
        *,
        may_replace: ReplaceCheck,
    ) -> SaveResult:
        self.objects[key] = b"".join([chunk async for chunk in chunks])
        return SaveResult(size=len(self.objects[key]), replaced=False)


class _WatchedLocks(WatchedLocks):
    """KeyLocks that know which keys are held, and can keep a key's lock closed until ``opened``."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting, self.opened = asyncio.Event(), asyncio.Event()
        self.opened.set()

    async def before(self, key: str) -> None:
        self.waiting.set()
        await self.opened.wait()


class _Index(MemoryState):
    """A MemoryState whose index writes note whether the key's lock was held, and can be held up."""

    def __init__(self, locks: _WatchedLocks) -> None:
        super().__init__()
        self.locks = locks
        self.held_while_recording: list[bool] = []
        self.recording, self.release = asyncio.Event(), asyncio.Event()
        self.release.set()

    async def record_file(
        self, key: str, *, platform: str, owner_id: int, chat_id: int, size: int, saved_at: float
    ) -> SavedFile:
        self.held_while_recording.append(key in self.locks.held)
        self.recording.set()
        await self.release.wait()
        return await super().record_file(
            key, platform=platform, owner_id=owner_id, chat_id=chat_id, size=size, saved_at=saved_at
        )


def _setup() -> tuple[Context, _Chat, _Index, _WatchedLocks, Event]:
    chat, locks = _Chat(), _WatchedLocks()
    state = _Index(locks)
    ctx = Context(
        platform=cast(Platform, chat),
        storage=cast(ObjectStore, _Bucket()),
        state=state,
        policy=Policy(),
        key_locks=locks,
    )
    document = Document("file-id", "unique-id", "a.txt", "text/plain", len(CONTENT))
    return ctx, chat, state, locks, make_event(7, document=document)


async def test_the_index_is_written_under_the_keys_lock_with_the_put() -> None:
    """record_file runs while the key's lock is held, so a rename of the key cannot come in between."""
    ctx, chat, state, _, event = _setup()
    await asyncio.wait_for(save_document(ctx, event), DEADLINE_S)
    assert state.held_while_recording == [True]
    assert "[document has been saved]" in chat.sent[-1][0]


async def test_a_shutdown_after_the_put_counts_as_saved() -> None:
    """Cancelled once the object is in the bucket: the file is indexed, told saved, and marked handled."""
    ctx, chat, state, _, event = _setup()
    state.release.clear()
    task = asyncio.create_task(save_document(ctx, event))
    await asyncio.wait_for(state.recording.wait(), DEADLINE_S)  # the put is done; the index write runs
    task.cancel()  # the shutdown's timeout ran out
    state.release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE_S)
    texts = [text for text, _ in chat.sent]
    assert "[document has been saved]" in texts[-1], texts
    assert not any("[document has not been saved]" in t for t in texts), texts
    buttons = chat.sent[-1][1]
    assert buttons is not None  # the Rename button: the file is in the index
    entry = await state.get_file(int(buttons[0][0].data.removeprefix(RENAME_PREFIX)))
    assert entry is not None and entry.key == "a.txt"
    assert await state.is_handled("telegram", event.update_id)  # the restart does not save it again


async def test_the_speed_clock_starts_once_the_keys_lock_is_held() -> None:
    """Time spent waiting for another save of the same name does not count against the speed."""
    ctx, _, _, locks, event = _setup()
    assert event.document is not None
    locks.opened.clear()
    save = Save(ctx, event, event.document, "a.txt")
    task = asyncio.create_task(save.run())
    await asyncio.wait_for(locks.waiting.wait(), DEADLINE_S)
    released_at = time.monotonic()
    locks.opened.set()
    await asyncio.wait_for(task, DEADLINE_S)
    assert save.meter is not None and save.meter.started >= released_at


def test_in_an_open_bot_a_name_belongs_to_one_user_of_one_platform() -> None:
    """The owner check compares platform and user: VK user 1 may not replace Telegram user 1's file."""
    ctx, _, _, _, event = _setup()
    assert event.document is not None
    mine = StoredObject("a.txt", 1, {"user-id": "1", "platform": "telegram"})
    legacy = StoredObject("a.txt", 1, {"user-id": "1"})  # saved before VK: a Telegram user's
    Save(ctx, event, event.document, "a.txt")._owner_rule()(mine)
    Save(ctx, event, event.document, "a.txt")._owner_rule()(legacy)
    vk_event = dataclasses.replace(event, platform="vk")
    for stored in (mine, legacy):
        with pytest.raises(TransferError, match="taken by a file someone else saved"):
            Save(ctx, vk_event, event.document, "a.txt")._owner_rule()(stored)
    assert Save(ctx, vk_event, event.document, "a.txt")._info().metadata["platform"] == "vk"

"""/files handler units: the Prev/Next button data, and dropping gone entries under the key's lock."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.helpers import WatchedLocks, make_event
from tgs3bot.context import Context, Policy
from tgs3bot.events import EventKind
from tgs3bot.handlers.listing import (
    MAX_PAGE,
    PAGE_SIZE,
    PageRequest,
    list_files,
    page_data,
    page_request,
    page_size,
)
from tgs3bot.handlers.rename import finish_rename
from tgs3bot.interfaces import Dialog, SavedFile
from tgs3bot.state import MemoryState
from tgs3bot.storage.base import StoredObject


def test_page_buttons_fit_telegrams_64_bytes_and_read_back() -> None:
    """The longest data a Prev/Next button can carry is within 64 bytes and parses to the same request."""
    for saved_at in (-1.2345678901234567e-308, 1764288000.1234567, 0.1 + 0.2):
        request = PageRequest(older=False, page=MAX_PAGE, cursor=(saved_at, 2**63 - 1))
        data = page_data(request)
        assert len(data.encode()) <= 64, data
        event = make_event(1, kind=EventKind.CALLBACK, callback_id="cb", callback_data=data)
        assert page_request(event) == request


class _Bucket:
    """An in-memory ObjectStore whose rename can be held between the move and its return."""

    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)
        self.moved, self.release = asyncio.Event(), asyncio.Event()

    async def head(self, key: str) -> StoredObject | None:
        return StoredObject(key, 1, {}) if key in self.keys else None

    async def rename(self, old_key: str, new_key: str, *, content_disposition: str) -> bool:
        self.keys = (self.keys - {old_key}) | {new_key}  # copied and deleted: S3 is done
        self.moved.set()
        await self.release.wait()  # ...and the rename has not yet moved the index entry
        return True


class _Chat:
    """A Platform that keeps what the handlers send."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send_text(self, chat_id: int, text: str, **_: Any) -> int:
        self.texts.append(text)
        return len(self.texts)


class _WatchedLocks(WatchedLocks):
    """KeyLocks that say when someone waits for a key another holds."""

    def __init__(self) -> None:
        super().__init__()
        self.contended = asyncio.Event()

    async def before(self, key: str) -> None:
        if key in self.held:
            self.contended.set()


async def test_listing_never_drops_an_entry_a_rename_is_moving() -> None:
    """/files during a rename's window (object moved, entry not yet) waits for the key's lock and keeps it."""
    state, bucket, chat, locks = MemoryState(), _Bucket("a.txt"), _Chat(), _WatchedLocks()
    ctx = Context(platform=chat, storage=bucket, state=state, policy=Policy(), key_locks=locks)  # type: ignore[arg-type]
    entry = await state.record_file(
        "a.txt", platform="telegram", owner_id=1, chat_id=1, size=1, saved_at=1_700_000_000.0
    )
    await state.set_dialog("telegram", 1, Dialog("rename", entry.id, time.time()))
    renaming = asyncio.create_task(finish_rename(ctx, make_event(1, text="b.txt")))
    await bucket.moved.wait()
    listing = asyncio.create_task(list_files(ctx, make_event(2, text="/files")))
    contended = asyncio.create_task(locks.contended.wait())
    await asyncio.wait({listing, contended}, return_when=asyncio.FIRST_COMPLETED)
    bucket.release.set()
    await asyncio.gather(renaming, listing)
    contended.cancel()
    assert await state.get_file(entry.id) == SavedFile(
        entry.id, "b.txt", 1, 1, 1, 1_700_000_000.0, "telegram"
    )
    listed = next(t for t in chat.texts if "newest first" in t)
    assert "b.txt" in listed and "gone" not in listed, listed  # shown under the name it moved to
    assert any("[document has been renamed]" in t for t in chat.texts)


def test_a_page_leaves_room_for_a_link_per_line_and_paging_where_buttons_are_few() -> None:
    """Ten lines where buttons are plenty; with VK's ten buttons, eight lines (eight links, Prev, Next)."""
    assert page_size(Policy()) == PAGE_SIZE == 10
    assert page_size(Policy(max_buttons=10)) == 8
    assert page_size(Policy(max_buttons=2)) == 1  # never an empty page

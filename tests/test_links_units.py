"""Share-link and same-file handler units: failures that reach the user, and the locks a copy holds."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from structlog.testing import capture_logs

from tests.helpers import WatchedLocks, make_event
from tgs3bot import metrics
from tgs3bot.context import Context, Policy
from tgs3bot.errors import TransferError
from tgs3bot.events import Document, EventKind
from tgs3bot.handlers.again import find_earlier, holds
from tgs3bot.handlers.documents import LINK_PREFIX, save_document
from tgs3bot.handlers.links import share_link
from tgs3bot.interfaces import Platform
from tgs3bot.metrics import Metrics
from tgs3bot.state import MemoryState
from tgs3bot.storage.base import ObjectInfo, ObjectStore, ReplaceCheck, SaveResult, StoredObject

DEADLINE_S = 60  # a deadline for a hang, not an expectation


class _Chat:
    """A Platform that keeps what the handlers send and the notices on pressed buttons."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.notices: list[str | None] = []

    async def send_text(self, chat_id: int, text: str, **_: Any) -> int:
        self.texts.append(text)
        return len(self.texts)

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        self.notices.append(text)


class _Unreachable:
    """An ObjectStore that cannot be reached."""

    async def head(self, key: str) -> StoredObject | None:
        raise TransferError("the storage could not be reached")


class _Bucket:
    """An in-memory ObjectStore with ``head`` and ``copy``; a copy notes the locks held during it."""

    def __init__(self, locks: WatchedLocks) -> None:
        self.objects: dict[str, StoredObject] = {}
        self.locks = locks
        self.held_while_copying: set[str] = set()

    async def head(self, key: str) -> StoredObject | None:
        return self.objects.get(key)

    async def copy(
        self, source: StoredObject, key: str, info: ObjectInfo, *, may_replace: ReplaceCheck
    ) -> SaveResult | None:
        self.held_while_copying = set(self.locks.held)
        self.objects[key] = StoredObject(key, source.size, info.metadata, info.content_type)
        return SaveResult(size=source.size, replaced=False)

    async def save(self, *args: Any, **kwargs: Any) -> SaveResult:
        raise AssertionError("the same file must not be downloaded and saved again")


async def test_a_bucket_that_cannot_be_asked_gets_a_message_and_a_log_line() -> None:
    """HEAD failing: no link, the spinner stops, the user reads why, the log names the file."""
    state, chat = MemoryState(), _Chat()
    entry = await state.record_file("a.txt", platform="telegram", owner_id=1, chat_id=1, size=1, saved_at=1.0)
    ctx = Context(cast(Platform, chat), cast(ObjectStore, _Unreachable()), state, Policy())
    press = make_event(1, kind=EventKind.CALLBACK, callback_id="cb", callback_data=f"{LINK_PREFIX}{entry.id}")
    with capture_logs() as logs:
        await asyncio.wait_for(share_link(ctx, press), DEADLINE_S)
    assert chat.notices == [None]
    assert len(chat.texts) == 1 and "could not be reached" in chat.texts[0]
    assert [(r["event"], r["key"]) for r in logs if r["log_level"] == "warning"] == [
        ("share_link_failed", "a.txt")
    ]


async def test_a_stale_press_without_a_spinner_is_answered_in_the_chat() -> None:
    """A platform without callback ids still hears why there is no link."""
    chat = _Chat()
    ctx = Context(cast(Platform, chat), cast(ObjectStore, _Unreachable()), MemoryState(), Policy())
    await share_link(ctx, make_event(1, kind=EventKind.CALLBACK, callback_data=f"{LINK_PREFIX}42"))
    assert len(chat.texts) == 1 and "no longer known" in chat.texts[0]


async def _known_file(unique_id: str, **metadata: str) -> tuple[Context, MemoryState, _Bucket, _Chat]:
    """A bucket holding Telegram user 1's a.txt (5 bytes, ``unique_id`` in its metadata, with
    ``metadata`` besides), indexed with that id noted; and the context around them."""
    state, locks, chat = MemoryState(), WatchedLocks(), _Chat()
    bucket = _Bucket(locks)
    bucket.objects["a.txt"] = StoredObject(
        "a.txt", 5, {"user-id": "1", **metadata, "file-unique-id": unique_id}
    )
    entry = await state.record_file("a.txt", platform="telegram", owner_id=1, chat_id=1, size=5, saved_at=1.0)
    await state.set_file_unique_id("telegram", entry.id, unique_id)
    ctx = Context(cast(Platform, chat), cast(ObjectStore, bucket), state, Policy(), key_locks=locks)
    return ctx, state, bucket, chat


async def test_a_copy_holds_both_keys_locks_through_the_index_write() -> None:
    """The copy runs while the source's and the new key's locks are held (no save or rename between)."""
    ctx, state, bucket, chat = await _known_file("AgAD1")
    document = Document("file-id", "AgAD1", "b.txt", "text/plain", 5)
    await asyncio.wait_for(save_document(ctx, make_event(2, document=document)), DEADLINE_S)
    assert bucket.held_while_copying == {"a.txt", "b.txt"}
    assert "[document has been saved]" in chat.texts[-1] and "b.txt" in chat.texts[-1].splitlines()
    [copied] = [
        f for f in await state.find_files_by_unique_id("telegram", "AgAD1", limit=5) if f.key == "b.txt"
    ]
    assert copied.owner == ("telegram", 1)
    assert bucket.objects["b.txt"].metadata["file-unique-id"] == "AgAD1"
    assert bucket.objects["b.txt"].metadata["platform"] == "telegram"  # as a fresh save writes it


async def test_a_link_is_refused_to_the_same_number_on_another_platform() -> None:
    """In an open bot Telegram user 1's file gets no link for VK user 1 (ownership is a pair)."""
    state, chat = MemoryState(), _Chat()
    entry = await state.record_file("a.txt", platform="telegram", owner_id=1, chat_id=1, size=1, saved_at=1.0)
    ctx = Context(cast(Platform, chat), cast(ObjectStore, _Unreachable()), state, Policy())
    data = f"{LINK_PREFIX}{entry.id}"
    press = make_event(1, kind=EventKind.CALLBACK, callback_id="cb", callback_data=data, platform="vk")
    with capture_logs() as logs:
        await asyncio.wait_for(share_link(ctx, press), DEADLINE_S)
    assert chat.notices == ["You can get links only to the files you saved."] and chat.texts == []
    [refused] = [r for r in logs if r["event"] == "share_link_refused"]
    assert (refused["platform"], refused["owner_platform"]) == ("vk", "telegram")


async def test_a_vk_doc_is_never_taken_for_a_telegram_file_of_the_same_id() -> None:
    """A VK doc whose id text equals a Telegram file's noted id is downloaded, not copied from it."""
    ctx, _state, bucket, _chat = await _known_file("1_2", platform="telegram")
    document = Document("https://vk.example/doc", "1_2", "b.txt", "text/plain", 5)
    with capture_logs() as logs:
        earlier = await find_earlier(ctx, make_event(2, document=document, platform="vk"), document, "b.txt")
    assert earlier is None and not [r for r in logs if r["log_level"] != "debug"]
    assert not holds(bucket.objects["a.txt"], "vk", document)  # nor would its metadata pass
    assert holds(bucket.objects["a.txt"], "telegram", document)


async def test_copies_and_already_there_count_as_same_file_saves_not_uploads() -> None:
    """tgs3bot_saved_documents/bytes count uploads only; a copy and an "already there" count in
    tgs3bot_same_file_saves_total by how."""
    ctx, _state, _bucket, chat = await _known_file("AgAD1")
    document = Document("file-id", "AgAD1", "b.txt", "text/plain", 5)
    m = Metrics()
    with metrics.bound(m):
        await asyncio.wait_for(save_document(ctx, make_event(2, document=document)), DEADLINE_S)
        await asyncio.wait_for(save_document(ctx, make_event(3, document=document)), DEADLINE_S)
    assert "already in the bucket" in chat.texts[-1]
    get = m.registry.get_sample_value
    assert get("tgs3bot_same_file_saves_total", {"how": "copied"}) == 1
    assert get("tgs3bot_same_file_saves_total", {"how": "already"}) == 1
    assert get("tgs3bot_saved_documents_total") == 0 and get("tgs3bot_saved_bytes_total") == 0

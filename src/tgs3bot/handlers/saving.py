"""One document's way into the bucket: hold its key, stream it in with progress, index it.

The key's lock covers the put and the index write together, so a rename of the same key never
runs between them. ``Save`` remembers how far it got: an error or a cancellation (shutdown) that
comes after the put has succeeded leaves a saved file, which the caller must report as saved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass

import structlog

from tgs3bot.context import Context
from tgs3bot.errors import TransferError
from tgs3bot.events import Document, Event
from tgs3bot.filenames import content_disposition
from tgs3bot.interfaces import SavedFile
from tgs3bot.progress import TransferMeter, reporting
from tgs3bot.storage.base import ObjectInfo, ReplaceCheck, StoredObject
from tgs3bot.utils import human_size

log = structlog.get_logger(__name__)

OWNER_KEY = "user-id"  # object metadata naming who saved it; S3 sends it as x-amz-meta-user-id
INDEX_WRITE_TIMEOUT_S = 5  # how long a cancelled save still waits for its index write


@dataclass(frozen=True, slots=True)
class Saved:
    """What a successful put produced."""

    key: str
    size: int
    replaced: bool


class Save:
    """Saving one document under ``key``; ``saved`` and ``entry`` say how far it got."""

    def __init__(self, ctx: Context, event: Event, document: Document, key: str) -> None:
        self._ctx = ctx
        self._event = event
        self._document = document
        self.key = key
        self.meter: TransferMeter | None = None
        self.saved: Saved | None = None  # set once the object is in the bucket
        self.entry: SavedFile | None = None  # its index entry, unless the index write failed

    async def run(self) -> Saved:
        """Check the size, then put and index under the key's lock; ``TransferError`` refuses."""
        self._check_size()
        async with self._ctx.key_locks.hold(self.key):
            # Made here, so that waiting for another save of this name is not counted as transfer time.
            self.meter = TransferMeter(self._document.file_size)
            try:
                saved = await self._transfer(self.meter)
            finally:
                if self.saved is not None:  # even if cancelled since: the file is in the bucket
                    await _to_the_end(self._record(self.saved), INDEX_WRITE_TIMEOUT_S)
        return saved

    def _check_size(self) -> None:
        limit, size = self._ctx.policy.download_limit, self._document.file_size
        if size is not None and size > limit:
            raise TransferError(
                f"the file is {human_size(size)}, and Telegram lets bots download at most {human_size(limit)}"
            )

    async def _transfer(self, meter: TransferMeter) -> Saved:
        ctx, document = self._ctx, self._document
        async with (
            ctx.platform.open_file(document) as chunks,
            reporting(ctx.platform, self._event.chat_id, self.key, meter),
        ):
            result = await ctx.storage.save(
                self.key,
                meter.count(chunks),
                self._info(),
                document.file_size,
                may_replace=self._owner_rule(),
            )
            self.saved = saved = Saved(key=self.key, size=result.size, replaced=result.replaced)
        return saved

    async def _record(self, saved: Saved) -> None:
        """Index the saved object; a failure is logged (the file is in the bucket all the same)."""
        event = self._event
        try:
            self.entry = await self._ctx.state.record_file(
                saved.key,
                owner_id=event.user_id,
                chat_id=event.chat_id,
                size=saved.size,
                saved_at=time.time(),
            )
        except Exception:
            log.exception("index_write_failed", key=saved.key)

    def _info(self) -> ObjectInfo:
        document, event = self._document, self._event
        return ObjectInfo(
            content_type=document.mime_type or "application/octet-stream",
            content_disposition=content_disposition(self.key),
            metadata={
                OWNER_KEY: str(event.user_id),
                "chat-id": str(event.chat_id),
                "file-unique-id": document.file_unique_id,
            },
        )

    def _owner_rule(self) -> ReplaceCheck:
        """In an open bot a name belongs to whoever saved it first; in a closed one the team shares names."""
        policy, user_id, key = self._ctx.policy, self._event.user_id, self.key

        def may_replace(existing: StoredObject) -> None:
            if policy.open_bot and existing.metadata.get(OWNER_KEY) != str(user_id):
                raise TransferError(
                    f"the name «{key}» is taken by a file someone else saved; "
                    "rename your file and send it again"
                )

        return may_replace


async def _to_the_end(step: Awaitable[None], timeout_s: float) -> None:
    """Await ``step``; if the caller is cancelled meanwhile, let it finish (within ``timeout_s``) first."""
    task = asyncio.ensure_future(step)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task}, timeout=timeout_s)
        raise

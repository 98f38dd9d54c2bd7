"""One document's way into the bucket: hold its key, stream it in with progress, index it.

A file the bucket already holds (the same ``file_unique_id``) is kept or copied there instead of
downloaded (``handlers.again``), under the same rules and locks. The key's lock covers the put
(or copy) and the index write together, so a rename of the same key never runs between them.
``Save`` remembers how far it got: an error or a cancellation (shutdown) that comes after the put
has succeeded leaves a saved file, which the caller must report as saved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass

import structlog

from tgs3bot import metrics
from tgs3bot.context import Context
from tgs3bot.errors import TransferError
from tgs3bot.events import Document, Event
from tgs3bot.filenames import content_disposition
from tgs3bot.handlers.again import Earlier, find_earlier, holding_keys, recheck
from tgs3bot.handlers.metadata import object_metadata, saved_by
from tgs3bot.interfaces import SavedFile
from tgs3bot.progress import TransferMeter, reporting
from tgs3bot.storage.base import ObjectInfo, ReplaceCheck, StoredObject
from tgs3bot.utils import human_size

log = structlog.get_logger(__name__)

INDEX_WRITE_TIMEOUT_S = 5  # how long a cancelled save still waits for its index write


@dataclass(frozen=True, slots=True)
class Saved:
    """What a successful put produced."""

    key: str
    size: int
    replaced: bool
    already: bool = False  # the object under the key held this very file: nothing was written
    copied: bool = False  # copied in the bucket from another key that held it (``handlers.again``)


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
        """Keep or copy the file if the bucket has it already (``handlers.again``); else check the
        size, then put and index under the key's lock. ``TransferError`` refuses."""
        # Before any lock is held (``find_earlier`` may take one to drop a gone entry).
        earlier = await find_earlier(self._ctx, self._event, self._document, self.key)
        if earlier is not None and (again := await self._again(earlier)) is not None:
            return again
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

    async def _again(self, earlier: Earlier) -> Saved | None:
        """Keep (same key) or copy the object that holds the file, under both keys' locks.

        None if that object no longer holds it once the locks are held: download it after all.
        """
        async with holding_keys(self._ctx.key_locks, self.key, earlier.entry.key):
            stored = await recheck(self._ctx, earlier, self._event, self._document)
            if stored is None:
                return None
            if earlier.entry.key == self.key:
                self._owner_rule()(stored)  # someone else's name is refused here as in a fresh save
                self.entry = earlier.entry
                self.saved = Saved(key=self.key, size=stored.size, replaced=False, already=True)
                metrics.same_file_saved("already")
                return self.saved
            try:
                copy = self._ctx.storage.copy(stored, self.key, self._info(), may_replace=self._owner_rule())
                if (result := await copy) is not None:
                    self.saved = Saved(self.key, result.size, result.replaced, copied=True)
                    metrics.same_file_saved("copied")
            finally:
                if self.saved is not None:  # even if cancelled since: the copy is in the bucket
                    await _to_the_end(self._record(self.saved), INDEX_WRITE_TIMEOUT_S)
        return self.saved

    def _check_size(self) -> None:
        policy, size = self._ctx.policy, self._document.file_size
        if size is not None and size > policy.download_limit:
            raise TransferError(
                f"the file is {human_size(size)}, and {policy.platform_title} lets bots download "
                f"at most {human_size(policy.download_limit)}"
            )

    async def _transfer(self, meter: TransferMeter) -> Saved:
        ctx, document = self._ctx, self._document
        async with (
            metrics.transfer_in_flight(),
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
            metrics.document_saved(result.size)
        return saved

    async def _record(self, saved: Saved) -> None:
        """Index the saved object; a failure is logged (the file is in the bucket all the same)."""
        event = self._event
        try:
            self.entry = await self._ctx.state.record_file(
                saved.key,
                platform=event.platform,
                owner_id=event.user_id,
                chat_id=event.chat_id,
                size=saved.size,
                saved_at=time.time(),
            )
            await self._ctx.state.set_file_unique_id(
                event.platform, self.entry.id, self._document.file_unique_id
            )
        except Exception:
            log.exception("index_write_failed", key=saved.key)

    def _info(self) -> ObjectInfo:
        document, event = self._document, self._event
        return ObjectInfo(
            content_type=document.mime_type or "application/octet-stream",
            content_disposition=content_disposition(self.key),
            metadata=object_metadata(event, document),
        )

    def _owner_rule(self) -> ReplaceCheck:
        """In an open bot a name belongs to whoever saved it first; in a closed one the team shares names."""
        policy, user, key = self._ctx.policy, self._event.user, self.key

        def may_replace(existing: StoredObject) -> None:
            if policy.open_bot and saved_by(existing) != user:
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

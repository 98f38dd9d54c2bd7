"""The same file again: a document the bot already saved is copied in the bucket, not downloaded.

Telegram's ``file_unique_id`` names one file for every bot and user, and it never changes; a VK
doc's is its ``owner_id_id`` (``platforms.vk_events``), the same only for that very doc (one
attached again from the user's documents; the same bytes uploaded again are a new doc). A save
notes it in the index entry (``StateStore.set_file_unique_id``), and the object carries it too
(``x-amz-meta-file-unique-id``, beside ``x-amz-meta-platform``). A note is its platform's: a VK
doc never matches a Telegram file, in the index or in the metadata. When a document arrives whose
file_unique_id the index knows:

- each noted entry (the one under the document's own key first, then the newest) is checked
  against the bucket with a HEAD: gone → the entry is dropped (``handlers.entries``); an object
  that no longer holds that file (its metadata names another, or its size differs: replaced by a
  save the index missed, or by another program) → the note is cleared. Either way the next entry
  is tried, and with none left the document is downloaded as usual;
- under the document's own key: nothing is written, and the reply says it is already there;
- under another key: a server-side copy (``ObjectStore.copy``) to the document's key, written
  with what a fresh save writes (owner and platform, Unicode name, type, disposition, metadata)
  and under the same rules: the key's lock, and another (platform, user)'s object under that name
  is refused in an open bot.

Whose entries count: anyone's on the same platform. The bytes are the same file for everyone, so
copying another user's object only saves bandwidth, and the reply names only the user's own key,
exactly as a fresh save's would (nothing says where the bytes came from). Both keys' locks are
held, in one order, from the check under them to the index write, so no save or rename of either
runs between.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import structlog

from tgs3bot.context import Context
from tgs3bot.errors import TransferError
from tgs3bot.events import Document, Event
from tgs3bot.handlers.entries import check_entry
from tgs3bot.handlers.metadata import UNIQUE_ID_KEY, saved_platform
from tgs3bot.interfaces import KeyLocking, SavedFile
from tgs3bot.storage.base import StoredObject

log = structlog.get_logger(__name__)

MAX_CANDIDATES = 5  # noted entries looked at (a HEAD each) before downloading after all


@dataclass(frozen=True, slots=True)
class Earlier:
    """An index entry whose object holds the document's very file."""

    entry: SavedFile
    stored: StoredObject


def holds(stored: StoredObject, platform: str, document: Document) -> bool:
    """Whether the object holds the platform's document (its metadata says so, the size agrees)."""
    same_size = document.file_size is None or stored.size == document.file_size
    same_file = stored.metadata.get(UNIQUE_ID_KEY) == document.file_unique_id
    return same_file and saved_platform(stored) == platform and same_size


async def find_earlier(ctx: Context, event: Event, document: Document, key: str) -> Earlier | None:
    """An object already holding the document's file, checked in the bucket; None: download it.

    Takes no lock of its own but the one a gone entry's drop takes, so call it before holding any.
    A failure to look is logged and means a download, which does not need the index.
    """
    try:
        uid, platform = document.file_unique_id, event.platform
        entries = await ctx.state.find_files_by_unique_id(platform, uid, limit=MAX_CANDIDATES)
        for entry in sorted(entries, key=lambda e: e.key != key):  # the own key first, then newest
            stored = await _still_there(ctx, entry, document)
            if stored is not None:
                return Earlier(entry, stored)
    except TransferError as exc:  # the bucket could not be asked: the download reports its own fate
        log.warning("same_file_lookup_failed", key=key, reason=exc.reason)
    except Exception:  # the state: the same, and this one is unexpected
        log.exception("same_file_lookup_failed", key=key)
    return None


async def _still_there(ctx: Context, entry: SavedFile, document: Document) -> StoredObject | None:
    stored = await ctx.storage.head(entry.key)
    if stored is None:
        await check_entry(ctx, entry)  # drops the entry under its key's lock if it is really gone
        return None
    if not holds(stored, entry.platform, document):
        log.info("same_file_note_stale", key=entry.key, file_id=entry.id)
        await ctx.state.set_file_unique_id(entry.platform, entry.id, None)
        return None
    return stored


async def recheck(ctx: Context, earlier: Earlier, event: Event, document: Document) -> StoredObject | None:
    """Under the locks: the object, if it still holds the file (a save may have come between)."""
    try:
        stored = await ctx.storage.head(earlier.entry.key)
    except TransferError as exc:
        log.warning("same_file_recheck_failed", key=earlier.entry.key, reason=exc.reason)
        return None
    return stored if stored is not None and holds(stored, event.platform, document) else None


@asynccontextmanager
async def holding_keys(locks: KeyLocking, *keys: str) -> AsyncIterator[None]:
    """Hold the locks of all ``keys``, taken in sorted order so two holders cannot deadlock."""
    async with AsyncExitStack() as stack:
        for key in sorted(set(keys)):
            await stack.enter_async_context(locks.hold(key))
        yield

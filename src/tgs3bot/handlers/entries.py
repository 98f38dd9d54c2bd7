"""Index entries checked against the bucket: what /files and the share links rely on."""

from __future__ import annotations

import structlog

from tgs3bot.context import Context
from tgs3bot.interfaces import SavedFile

log = structlog.get_logger(__name__)


async def check_entry(ctx: Context, file: SavedFile) -> tuple[SavedFile, bool]:
    """The entry as it stands and whether its object is in the bucket; one that is gone is dropped.

    The drop holds the key's lock and looks again, because a rename or a save of that key may be
    half done: a rename copies and deletes the object before it moves the entry, and dropping
    the entry in between would lose the renamed file from the index for good.
    Raises ``TransferError`` if the bucket cannot be asked.
    """
    if await ctx.storage.head(file.key) is not None:
        return file, True
    async with ctx.key_locks.hold(file.key):
        current = await ctx.state.get_file(file.id)
        if current is None:  # dropped already
            return file, False
        if current.key != file.key:  # renamed meanwhile: shown under its new name
            return current, True
        if await ctx.storage.head(file.key) is not None:  # saved again meanwhile
            return current, True
        await ctx.state.forget_file(file.id)
    log.info("indexed_file_gone", key=file.key, file_id=file.id)
    return file, False

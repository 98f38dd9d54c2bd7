"""Which platform file each index entry's object holds (``file_unique_id``), in the SQLite file.

A mixin of ``SqliteState`` (kept apart: ``sqlite.py`` is near its size limit). The column
``files.file_unique_id`` is nullable and comes with the schema v4 migration (``sqlite_schema``):
entries saved before it have no note, so their files are downloaded once more when sent again.
A note is its entry's platform's (``files.platform``): a Telegram file_unique_id and a VK doc's
``owner_id_id`` never meet. A partial index on (platform, file_unique_id) keeps the lookup a
range scan of the noted entries only.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import aiosqlite

from tgs3bot.interfaces import SavedFile
from tgs3bot.state.sqlite_schema import saved_file

SET_FILE_UNIQUE_ID_SQL = "UPDATE files SET file_unique_id = ? WHERE id = ? AND platform = ?"
FIND_FILES_BY_UNIQUE_ID_SQL = """SELECT id, key, owner_id, chat_id, size, saved_at, platform FROM files
    WHERE platform = ? AND file_unique_id = ? ORDER BY saved_at DESC, id DESC LIMIT ?"""


class UniqueIdNotes:
    """``StateStore.set_file_unique_id`` and ``find_files_by_unique_id`` for ``SqliteState``."""

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # SqliteState's: one atomic operation under its lock

    async def set_file_unique_id(self, platform: str, file_id: int, file_unique_id: str | None) -> None:
        """Note which of the platform's files the entry's object holds (None: not known).

        Ids unknown, or of another platform's entry, are ignored.
        """
        async with self.transaction() as db:
            await db.execute(SET_FILE_UNIQUE_ID_SQL, (file_unique_id, file_id, platform))

    async def find_files_by_unique_id(
        self, platform: str, file_unique_id: str, *, limit: int
    ) -> list[SavedFile]:
        """At most ``limit`` of the platform's entries noted as holding that file, anyone's, newest first."""
        params = (platform, file_unique_id, max(limit, 0))
        async with self.transaction() as db:
            rows = await db.execute_fetchall(FIND_FILES_BY_UNIQUE_ID_SQL, params)
        return [saved_file(row) for row in rows]

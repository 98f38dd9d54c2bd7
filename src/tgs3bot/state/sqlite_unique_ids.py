"""Which platform file each index entry's object holds (``file_unique_id``), in the SQLite file.

A mixin of ``SqliteState`` (kept apart: ``sqlite.py`` is at its size limit). The column
``files.file_unique_id`` is nullable and comes with the migration ``UNIQUE_IDS_MIGRATION``
(``sqlite_schema``): entries saved before it have no note, so their files are downloaded once
more when sent again. A partial index keeps the lookup a range scan of the noted entries only.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import aiosqlite

from tgs3bot.interfaces import SavedFile

SET_FILE_UNIQUE_ID_SQL = "UPDATE files SET file_unique_id = ? WHERE id = ?"
FIND_FILES_BY_UNIQUE_ID_SQL = """SELECT id, key, owner_id, chat_id, size, saved_at FROM files
    WHERE file_unique_id = ? ORDER BY saved_at DESC, id DESC LIMIT ?"""


class UniqueIdNotes:
    """``StateStore.set_file_unique_id`` and ``find_files_by_unique_id`` for ``SqliteState``."""

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # SqliteState's: one atomic operation under its lock

    async def set_file_unique_id(self, file_id: int, file_unique_id: str | None) -> None:
        """Note which platform file the entry's object holds (None: not known); unknown ids are ignored."""
        async with self.transaction() as db:
            await db.execute(SET_FILE_UNIQUE_ID_SQL, (file_unique_id, file_id))

    async def find_files_by_unique_id(self, file_unique_id: str, *, limit: int) -> list[SavedFile]:
        """At most ``limit`` entries noted as holding that platform file, anyone's, newest first."""
        async with self.transaction() as db:
            rows = await db.execute_fetchall(FIND_FILES_BY_UNIQUE_ID_SQL, (file_unique_id, max(limit, 0)))
        return [
            SavedFile(int(file_id), str(key), int(owner), int(chat), int(size), float(saved_at))
            for file_id, key, owner, chat, size, saved_at in rows
        ]

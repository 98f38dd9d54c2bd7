"""The SQLite state file's schema, its migrations and the queries ``SqliteState`` runs.

What the file holds (schema version 3, kept in ``PRAGMA user_version``):

- ``greeted(chat_id)``: chats that have had the greeting.
- ``handled(update_id, at)``: updates already handled, so a redelivered one is skipped; rows older
  than ``HANDLED_RETENTION_S`` are pruned at open and every ``PRUNE_INTERVAL_S``.
- ``dialogs(chat_id, kind, file_id, started_at)``: the question each chat is to answer (a new name).
- ``files(id, key, owner_id, chat_id, size, saved_at)``: the index of saved objects, one per key,
  with an index for each listing order (one owner's files, everyone's), newest first.
- ``journal(seq, update_id, chat_id, body)`` (v2): updates taken from the platform and not yet
  handled, in the order they were taken (``seq``), each as its JSON form (``events.to_json``).
- ``files.file_unique_id`` (v3): which platform file the entry's object holds, if noted
  (``state.sqlite_unique_ids``), so a file sent again is copied in the bucket, not downloaded.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from tgs3bot.errors import StartupError

# Telegram keeps an unconfirmed update for about 24 h; a week covers that with a wide margin.
HANDLED_RETENTION_S = 7 * 24 * 3600

SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS greeted (chat_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS handled (update_id INTEGER PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dialogs (
    chat_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    file_id INTEGER NOT NULL,
    started_at REAL NOT NULL
);
-- AUTOINCREMENT: an id is never given out again, so a stale button cannot reach another file.
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT UNIQUE NOT NULL,
    owner_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    size INTEGER NOT NULL,
    saved_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_owner ON files (owner_id, saved_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS files_by_time ON files (saved_at DESC, id DESC);
"""
MARK_HANDLED_SQL = "INSERT INTO handled (update_id, at) VALUES (?, ?) ON CONFLICT DO NOTHING"
MARK_GREETED_SQL = "INSERT INTO greeted (chat_id) VALUES (?) ON CONFLICT DO NOTHING"
# Whether the chat was greeted, and its dialog: one trip to the disk for a chat not in memory.
LOAD_CHAT_SQL = """SELECT EXISTS (SELECT 1 FROM greeted WHERE chat_id = ?1), d.kind, d.file_id, d.started_at
    FROM (SELECT 1) LEFT JOIN dialogs AS d ON d.chat_id = ?1"""
MARK_FLUSH_INTERVAL_S = 0.5
PRUNE_INTERVAL_S = 3600.0  # handled ids past their retention are deleted this often while running
PRUNE_HANDLED_SQL = "DELETE FROM handled WHERE at < ?"
MARK_FLUSH_BATCH = 500
RECENT_HANDLED_LIMIT = 100_000  # ids kept in memory; older ones are looked up on disk
CHAT_CACHE_LIMIT = 100_000  # chats whose greeting and dialog are remembered in memory


# The listing queries, by (one owner's files?, cursor): the cursor is None (the newest first),
# "before" (older than (saved_at, id), newest first) or "after" (newer than it, OLDEST first: the
# closest ones; the caller reverses them). Parameters: the owner id (if any), the cursor's
# saved_at and id (if any), the limit. The row-value comparison is a range on the indexes above,
# so a page deep in a long list reads only its own rows (public so tests can check the plans).
LIST_FILES_SQL: dict[tuple[bool, str | None], str] = {
    (True, None): """SELECT id, key, owner_id, chat_id, size, saved_at FROM files
        WHERE owner_id = ? ORDER BY saved_at DESC, id DESC LIMIT ?""",
    (True, "before"): """SELECT id, key, owner_id, chat_id, size, saved_at FROM files
        WHERE owner_id = ? AND (saved_at, id) < (?, ?) ORDER BY saved_at DESC, id DESC LIMIT ?""",
    (True, "after"): """SELECT id, key, owner_id, chat_id, size, saved_at FROM files
        WHERE owner_id = ? AND (saved_at, id) > (?, ?) ORDER BY saved_at, id LIMIT ?""",
    (False, None): """SELECT id, key, owner_id, chat_id, size, saved_at FROM files
        ORDER BY saved_at DESC, id DESC LIMIT ?""",
    (False, "before"): """SELECT id, key, owner_id, chat_id, size, saved_at FROM files
        WHERE (saved_at, id) < (?, ?) ORDER BY saved_at DESC, id DESC LIMIT ?""",
    (False, "after"): """SELECT id, key, owner_id, chat_id, size, saved_at FROM files
        WHERE (saved_at, id) > (?, ?) ORDER BY saved_at, id LIMIT ?""",
}
COUNT_FILES_SQL = {True: "SELECT count(*) FROM files WHERE owner_id = ?", False: "SELECT count(*) FROM files"}
GET_FILE_SQL = "SELECT id, key, owner_id, chat_id, size, saved_at FROM files WHERE id = ?"
RECORD_FILE_SQL = """INSERT INTO files (key, owner_id, chat_id, size, saved_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET
    owner_id = excluded.owner_id, chat_id = excluded.chat_id,
    size = excluded.size, saved_at = excluded.saved_at
    RETURNING id, key, owner_id, chat_id, size, saved_at"""

SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    update_id INTEGER UNIQUE NOT NULL,
    chat_id INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_by_chat ON journal (chat_id, seq);
"""
# OR IGNORE: an update Telegram delivers again (its confirmation was lost) is journaled once.
JOURNAL_APPEND_SQL = """INSERT OR IGNORE INTO journal (update_id, chat_id, body) VALUES {rows}
    RETURNING seq, update_id"""
JOURNAL_REMOVE_SQL = "DELETE FROM journal WHERE update_id = ?"
JOURNAL_ALL_SQL = "SELECT seq, body FROM journal ORDER BY seq"
JOURNAL_CHAT_SQL = "SELECT seq, body FROM journal WHERE chat_id = ? AND seq > ? ORDER BY seq LIMIT ?"

# The same file again (#10): a nullable column, so entries saved before it simply have no note.
UNIQUE_IDS_MIGRATION = """
ALTER TABLE files ADD COLUMN file_unique_id TEXT;
CREATE INDEX IF NOT EXISTS files_by_unique_id ON files (file_unique_id, saved_at DESC, id DESC)
    WHERE file_unique_id IS NOT NULL;
"""


# MIGRATIONS[n] takes a file from schema version n to n + 1; a new version appends a script.
MIGRATIONS: tuple[str, ...] = (SCHEMA_V1, SCHEMA_V2, UNIQUE_IDS_MIGRATION)
SCHEMA_VERSION = len(MIGRATIONS)


async def configure(db: aiosqlite.Connection) -> None:
    # WAL: readers never wait for the writer. FULL: every commit is on the disk (an fsync of the
    # WAL) before it returns, so a journaled batch survives a power cut before the next poll
    # confirms it to Telegram (NORMAL could lose the last commits). Measured: ~3 µs of CPU and
    # ~5 µs of wall time more per update in the queue and journal alone (batches of up to 100).
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=FULL")
    await db.execute("PRAGMA foreign_keys=ON")


async def migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Bring the file's schema to ``SCHEMA_VERSION``, one version per transaction."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row is not None else 0
    if version > SCHEMA_VERSION:
        raise StartupError(
            f"state file {path} has schema version {version}; this bot knows up to {SCHEMA_VERSION}"
        )
    for next_version in range(version + 1, SCHEMA_VERSION + 1):
        script = MIGRATIONS[next_version - 1]
        await db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {next_version};\nCOMMIT;")

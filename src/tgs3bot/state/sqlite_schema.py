"""The SQLite state file's schema, its migrations and the queries ``SqliteState`` runs.

What the file holds (schema version 4, kept in ``PRAGMA user_version``). Chat, user and update
ids are numbers within one platform, so each row names its ``platform`` (v3; older rows are
``telegram``'s):

- ``greeted(platform, chat_id)``: chats that have had the greeting.
- ``handled(platform, update_id, at)``: updates already handled, so a redelivered one is skipped;
  rows older than ``HANDLED_RETENTION_S`` are pruned at open and every ``PRUNE_INTERVAL_S``.
- ``dialogs(platform, chat_id, kind, file_id, started_at)``: the question each chat is to answer.
- ``files(id, key, owner_id, chat_id, size, saved_at, platform)``: the index of saved objects, one
  per key (one bucket), with an index for each listing order (one owner's files, everyone's).
- ``journal(seq, platform, update_id, chat_id, body)`` (v2): updates taken from a platform and not
  yet handled, in the order they were taken (``seq``), each as ``events.to_json`` wrote it.
- ``cursors(platform, value)`` (v3): where a platform's poller stopped reading (VK's long-poll
  ``ts``), saved once the batch read before it is journaled.
- ``files.file_unique_id`` (v4): which of its platform's files the entry's object holds, if noted
  (``state.sqlite_unique_ids``), so a file sent again is copied in the bucket, not downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from tgs3bot.errors import StartupError
from tgs3bot.interfaces import SavedFile

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
# The queries below are of the latest tables (v4: a migration's scripts run before any of them).
MARK_HANDLED_SQL = "INSERT INTO handled (platform, update_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
IS_HANDLED_SQL = "SELECT 1 FROM handled WHERE platform = ? AND update_id = ?"
MAX_HANDLED_SQL = "SELECT platform, max(update_id) FROM handled GROUP BY platform"
MARK_GREETED_SQL = "INSERT INTO greeted (platform, chat_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
# Whether the chat was greeted, and its dialog: one trip to the disk for a chat not in memory.
LOAD_CHAT_SQL = """SELECT EXISTS (SELECT 1 FROM greeted WHERE platform = ?1 AND chat_id = ?2),
    d.kind, d.file_id, d.started_at
    FROM (SELECT 1) LEFT JOIN dialogs AS d ON d.platform = ?1 AND d.chat_id = ?2"""
CLOSE_DIALOG_SQL = "DELETE FROM dialogs WHERE platform = ? AND chat_id = ?"
OPEN_DIALOG_SQL = """INSERT INTO dialogs (platform, chat_id, kind, file_id, started_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (platform, chat_id) DO UPDATE SET
    kind = excluded.kind, file_id = excluded.file_id, started_at = excluded.started_at"""
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
    (True, None): """SELECT id, key, owner_id, chat_id, size, saved_at, platform FROM files
        WHERE platform = ? AND owner_id = ? ORDER BY saved_at DESC, id DESC LIMIT ?""",
    (True, "before"): """SELECT id, key, owner_id, chat_id, size, saved_at, platform FROM files
        WHERE platform = ? AND owner_id = ? AND (saved_at, id) < (?, ?)
        ORDER BY saved_at DESC, id DESC LIMIT ?""",
    (True, "after"): """SELECT id, key, owner_id, chat_id, size, saved_at, platform FROM files
        WHERE platform = ? AND owner_id = ? AND (saved_at, id) > (?, ?) ORDER BY saved_at, id LIMIT ?""",
    (False, None): """SELECT id, key, owner_id, chat_id, size, saved_at, platform FROM files
        ORDER BY saved_at DESC, id DESC LIMIT ?""",
    (False, "before"): """SELECT id, key, owner_id, chat_id, size, saved_at, platform FROM files
        WHERE (saved_at, id) < (?, ?) ORDER BY saved_at DESC, id DESC LIMIT ?""",
    (False, "after"): """SELECT id, key, owner_id, chat_id, size, saved_at, platform FROM files
        WHERE (saved_at, id) > (?, ?) ORDER BY saved_at, id LIMIT ?""",
}
COUNT_FILES_SQL = {
    True: "SELECT count(*) FROM files WHERE platform = ? AND owner_id = ?",
    False: "SELECT count(*) FROM files",
}
GET_FILE_SQL = "SELECT id, key, owner_id, chat_id, size, saved_at, platform FROM files WHERE id = ?"
# A save from the same platform keeps the entry's note (the save writes it next); from another
# platform it drops it: a note is its platform's (v4). SET reads the row as it was.
RECORD_FILE_SQL = """INSERT INTO files (key, owner_id, chat_id, size, saved_at, platform)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET
    owner_id = excluded.owner_id, chat_id = excluded.chat_id,
    size = excluded.size, saved_at = excluded.saved_at, platform = excluded.platform,
    file_unique_id = CASE WHEN platform = excluded.platform THEN file_unique_id END
    RETURNING id, key, owner_id, chat_id, size, saved_at, platform"""

SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    update_id INTEGER UNIQUE NOT NULL,
    chat_id INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_by_chat ON journal (chat_id, seq);
"""

# v3: every chat, user and update id is one platform's (SPEC §6), so each table that keeps one
# gains ``platform``; the rows already there are Telegram's. A changed primary key means a new
# table; ``files`` only gains a column (its AUTOINCREMENT ids must never be given out again).
SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS cursors (platform TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE greeted_v3 (platform TEXT NOT NULL, chat_id INTEGER NOT NULL, PRIMARY KEY (platform, chat_id));
INSERT INTO greeted_v3 SELECT 'telegram', chat_id FROM greeted;
DROP TABLE greeted;
ALTER TABLE greeted_v3 RENAME TO greeted;
CREATE TABLE handled_v3 (
    platform TEXT NOT NULL, update_id INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (platform, update_id)
);
INSERT INTO handled_v3 SELECT 'telegram', update_id, at FROM handled;
DROP TABLE handled;
ALTER TABLE handled_v3 RENAME TO handled;
CREATE TABLE dialogs_v3 (
    platform TEXT NOT NULL,
    chat_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    file_id INTEGER NOT NULL,
    started_at REAL NOT NULL,
    PRIMARY KEY (platform, chat_id)
);
INSERT INTO dialogs_v3 SELECT 'telegram', chat_id, kind, file_id, started_at FROM dialogs;
DROP TABLE dialogs;
ALTER TABLE dialogs_v3 RENAME TO dialogs;
ALTER TABLE files ADD COLUMN platform TEXT NOT NULL DEFAULT 'telegram';
DROP INDEX files_by_owner;
CREATE INDEX files_by_owner ON files (platform, owner_id, saved_at DESC, id DESC);
CREATE TABLE journal_v3 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL,
    update_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (platform, update_id)
);
INSERT INTO journal_v3 (seq, platform, update_id, chat_id, body)
    SELECT seq, 'telegram', update_id, chat_id, body FROM journal;
DROP TABLE journal;
ALTER TABLE journal_v3 RENAME TO journal;
CREATE INDEX journal_by_chat ON journal (platform, chat_id, seq);
"""
# OR IGNORE: an update the platform delivers again (its confirmation was lost) is journaled once.
JOURNAL_APPEND_SQL = """INSERT OR IGNORE INTO journal (platform, update_id, chat_id, body) VALUES {rows}
    RETURNING seq, platform, update_id"""
JOURNAL_REMOVE_SQL = "DELETE FROM journal WHERE platform = ? AND update_id = ?"
JOURNAL_ALL_SQL = "SELECT seq, body FROM journal ORDER BY seq"
JOURNAL_CHAT_SQL = """SELECT seq, body FROM journal WHERE platform = ? AND chat_id = ? AND seq > ?
    ORDER BY seq LIMIT ?"""
GET_CURSOR_SQL = "SELECT value FROM cursors WHERE platform = ?"
SET_CURSOR_SQL = """INSERT INTO cursors (platform, value) VALUES (?, ?)
    ON CONFLICT (platform) DO UPDATE SET value = excluded.value"""

# v4, the same file again (#10): a nullable column, so entries saved before it have no note. A
# note is its platform's (a Telegram file_unique_id, a VK doc's owner_id_id), so the lookup is by
# (platform, file_unique_id).
SCHEMA_V4 = """
ALTER TABLE files ADD COLUMN file_unique_id TEXT;
CREATE INDEX IF NOT EXISTS files_by_unique_id ON files (platform, file_unique_id, saved_at DESC, id DESC)
    WHERE file_unique_id IS NOT NULL;
"""


# MIGRATIONS[n] takes a file from schema version n to n + 1; a new version appends a script.
MIGRATIONS: tuple[str, ...] = (SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4)
SCHEMA_VERSION = len(MIGRATIONS)


def saved_file(row: Iterable[Any]) -> SavedFile:
    """The index entry of a ``files`` row, as the queries above select it."""
    file_id, key, owner_id, chat_id, size, saved_at, platform = row
    return SavedFile(
        int(file_id), str(key), int(owner_id), int(chat_id), int(size), float(saved_at), str(platform)
    )


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

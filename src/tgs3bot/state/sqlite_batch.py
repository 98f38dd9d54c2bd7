"""Writes that ``SqliteState`` gathers and commits together, off the path of each update.

Handled marks, greeted chats and finished journal entries are written in one transaction every
``MARK_FLUSH_INTERVAL_S`` (or ``MARK_FLUSH_BATCH`` marks), and at close. Being in one transaction
matters: an update leaves the journal exactly when its handled mark is written, so after a crash
a journaled update is either still there and not marked (it runs again) or gone and marked.
"""

from __future__ import annotations

import aiosqlite

from tgs3bot.state.sqlite_schema import JOURNAL_REMOVE_SQL, MARK_GREETED_SQL, MARK_HANDLED_SQL


class WriteBatch:
    """Pending marks; ``write`` puts them into the open transaction, or keeps them on failure."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, int, float]] = []  # (platform, update id, when)
        self.greeted: set[tuple[str, int]] = set()  # (platform, chat id)
        self.finished: list[tuple[str, int]] = []  # (platform, update id) to remove from the journal

    def __len__(self) -> int:
        return len(self.handled) + len(self.greeted) + len(self.finished)

    async def write(self, db: aiosqlite.Connection) -> None:
        """Execute the pending writes on ``db`` (the caller commits); on error they stay pending."""
        handled, self.handled = self.handled, []
        greeted, self.greeted = self.greeted, set()
        finished, self.finished = self.finished, []
        try:
            if handled:
                await db.executemany(MARK_HANDLED_SQL, handled)
            if greeted:
                await db.executemany(MARK_GREETED_SQL, greeted)
            if finished:
                await db.executemany(JOURNAL_REMOVE_SQL, finished)
        except BaseException:
            self.handled[:0] = handled  # kept for the next flush
            self.greeted |= greeted
            self.finished[:0] = finished
            raise

"""Writes that ``SqliteState`` gathers and commits together, off the path of each update.

Handled marks, greeted chats and finished journal entries are written in one transaction: with
the next poll batch's journal rows, or every ``MARK_FLUSH_INTERVAL_S`` (or ``MARK_FLUSH_BATCH``
marks), and at close. Being in one transaction matters: an update leaves the journal exactly when
its handled mark is written, so after a crash a journaled update is either still there and not
marked (it runs again) or gone and marked.
"""

from __future__ import annotations

import sqlite3

from tgs3bot.state.sqlite_schema import JOURNAL_REMOVE_SQL, MARK_GREETED_SQL, MARK_HANDLED_SQL


class WriteBatch:
    """Pending marks; ``write`` puts them into the open transaction, ``restore`` keeps them on failure."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, int, float]] = []  # (platform, update id, when)
        self.greeted: set[tuple[str, int]] = set()  # (platform, chat id)
        self.finished: list[tuple[str, int]] = []  # (platform, update id) to remove from the journal
        # What a COMMIT still running took: written, not yet readable by the state's other
        # connections, so a read from the file must still see it here.
        self.committing: WriteBatch | None = None

    def __len__(self) -> int:
        return len(self.handled) + len(self.greeted) + len(self.finished)

    def greets(self, chat: tuple[str, int]) -> bool:
        """Whether a greeting of ``chat`` is pending or being committed (not readable from the file yet)."""
        return chat in self.greeted or (self.committing is not None and chat in self.committing.greeted)

    def write(self, db: sqlite3.Connection) -> WriteBatch:
        """Execute the pending writes on ``db`` (the caller commits) and return them, taken out.

        If the transaction fails after all, ``restore`` puts them back for the next one.
        """
        taken = WriteBatch()
        taken.handled, self.handled = self.handled, []
        taken.greeted, self.greeted = self.greeted, set()
        taken.finished, self.finished = self.finished, []
        try:
            if taken.handled:
                db.executemany(MARK_HANDLED_SQL, taken.handled)
            if taken.greeted:
                db.executemany(MARK_GREETED_SQL, taken.greeted)
            if taken.finished:
                db.executemany(JOURNAL_REMOVE_SQL, taken.finished)
        except BaseException:
            self.restore(taken)
            raise
        return taken

    def restore(self, taken: WriteBatch) -> None:
        """Put writes that were not committed back in front of the ones gathered since."""
        self.handled[:0] = taken.handled
        self.greeted |= taken.greeted
        self.finished[:0] = taken.finished

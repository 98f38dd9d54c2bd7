"""The in-process queue's journal in the SQLite state file (SPEC §5, the embedded default).

Each poll's batch is written in one transaction before the poller sends the getUpdates that
confirms it to Telegram; an update leaves the journal with its handled mark (``WriteBatch``), so
whatever a crash interrupts is still in the file at the next start.

The journal is written through the state's ``LoopWriter`` (``sqlite_loop`` says why and how), each
batch's rows together with the marks pending since the last batch, and read on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from tgs3bot.events import ChatKey, Event, from_json, to_json
from tgs3bot.state.sqlite import SqliteState
from tgs3bot.state.sqlite_schema import JOURNAL_ALL_SQL, JOURNAL_APPEND_SQL, JOURNAL_CHAT_SQL


class SqliteJournal:
    """``interfaces.Journal`` in the ``journal`` table of an open ``SqliteState``'s file."""

    def __init__(self, state: SqliteState) -> None:
        self._state = state

    async def append(self, events: Sequence[Event]) -> list[tuple[int, Event]]:
        """Write the events in one transaction; return the ones not journaled before, with their seq."""
        if not events:
            return []
        by_id = {(e.platform, e.update_id): e for e in events}
        params = [v for e in by_id.values() for v in (e.platform, e.update_id, e.chat_id, to_json(e))]
        # One statement for the whole batch; RETURNING names the rows inserted (not the ones
        # ignored), in the order of their seq.
        sql = JOURNAL_APPEND_SQL.format(rows=", ".join(["(?, ?, ?, ?)"] * len(by_id)))
        added = await self._state.commit_batch(sql, params)
        return sorted((int(seq), by_id[str(platform), int(update_id)]) for seq, platform, update_id in added)

    async def entries(
        self, chat: ChatKey | None = None, *, after_seq: int = 0, limit: int = -1
    ) -> list[tuple[int, Event]]:
        """Entries in ``seq`` order: all, or one chat's after ``after_seq`` (at most ``limit``)."""
        db = self._state.writer.reader
        if chat is None:
            rows = db.execute(JOURNAL_ALL_SQL).fetchall()
        else:
            rows = db.execute(JOURNAL_CHAT_SQL, (*chat, after_seq, limit)).fetchall()
        return [(int(seq), from_json(body)) for seq, body in rows]

    async def remove(self, platform: str, update_id: int) -> None:
        """Forget a finished update, with the next batch of marks."""
        self._state.batch.finished.append((platform, update_id))

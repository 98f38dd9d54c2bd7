"""A journal kept in memory: the in-process queue's journal for tests and for a bot without state.

It loses everything with the process; ``state.sqlite_journal.SqliteJournal`` is the durable one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from tgs3bot.events import ChatKey, Event


class MemoryJournal:
    """``interfaces.Journal`` in a dict (insertion order is ``seq`` order)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], tuple[int, Event]] = {}  # (platform, update id) → (seq, event)
        self._seq = itertools.count(1)

    async def append(self, events: Sequence[Event]) -> list[tuple[int, Event]]:
        """Keep the events not kept yet; return those with their ``seq``."""
        added = []
        for event in events:
            if (event.platform, event.update_id) not in self._entries:
                entry = self._entries[event.platform, event.update_id] = (next(self._seq), event)
                added.append(entry)
        return added

    async def entries(
        self, chat: ChatKey | None = None, *, after_seq: int = 0, limit: int = -1
    ) -> list[tuple[int, Event]]:
        """Entries in ``seq`` order: all, or one chat's after ``after_seq`` (at most ``limit``)."""
        found = [
            (seq, event)
            for seq, event in self._entries.values()
            if chat is None or (event.chat == chat and seq > after_seq)
        ]
        return found if limit < 0 else found[:limit]

    async def remove(self, platform: str, update_id: int) -> None:
        """Forget the update."""
        self._entries.pop((platform, update_id), None)

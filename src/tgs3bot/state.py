"""The bot's state, behind ``interfaces.StateStore``: in memory for now.

The persistent SQLite store (greeted chats, dialogs, the saved-files index, handled update ids)
is the next step; this one forgets everything on restart.
"""

from __future__ import annotations


class MemoryState:
    """State kept in the process; for tests and for a bot that may forget on restart."""

    def __init__(self) -> None:
        self._greeted: set[int] = set()

    async def is_greeted(self, chat_id: int) -> bool:
        """Whether the chat has been greeted already."""
        return chat_id in self._greeted

    async def mark_greeted(self, chat_id: int) -> None:
        """Remember that the chat has been greeted."""
        self._greeted.add(chat_id)

"""State kept in the process's memory: for tests, and for a bot that may forget on restart."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Self

from tgs3bot.events import ChatKey, UserKey
from tgs3bot.interfaces import Dialog, SavedFile
from tgs3bot.state.paging import page_cursor


def _newest_first(entry: SavedFile) -> tuple[float, int]:
    return (-entry.saved_at, -entry.id)


class MemoryState:
    """State kept in the process; for tests and for a bot that may forget on restart."""

    def __init__(self) -> None:
        self._greeted: set[ChatKey] = set()
        self._handled: set[tuple[str, int]] = set()  # (platform, update id)
        self._dialogs: dict[ChatKey, Dialog] = {}
        self._files: dict[int, SavedFile] = {}
        self._ids_by_key: dict[str, int] = {}
        self._next_id = itertools.count(1)
        self._cursors: dict[str, str] = {}
        self._unique_ids: dict[int, str] = {}  # entry id → the file of its platform its object holds

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def is_greeted(self, platform: str, chat_id: int) -> bool:
        """Whether the chat has been greeted already."""
        return (platform, chat_id) in self._greeted

    async def mark_greeted(self, platform: str, chat_id: int) -> None:
        """Remember that the chat has been greeted."""
        self._greeted.add((platform, chat_id))

    async def is_handled(self, platform: str, update_id: int) -> bool:
        """Whether the update was handled already."""
        return (platform, update_id) in self._handled

    async def mark_handled(self, platform: str, update_id: int) -> None:
        """Remember that the update was handled."""
        self._handled.add((platform, update_id))

    async def get_dialog(self, platform: str, chat_id: int) -> Dialog | None:
        """The chat's open dialog, if any."""
        return self._dialogs.get((platform, chat_id))

    async def set_dialog(self, platform: str, chat_id: int, dialog: Dialog | None) -> None:
        """Open (or replace) the chat's dialog; None closes it."""
        if dialog is None:
            self._dialogs.pop((platform, chat_id), None)
        else:
            self._dialogs[platform, chat_id] = dialog

    async def record_file(
        self, key: str, *, platform: str, owner_id: int, chat_id: int, size: int, saved_at: float
    ) -> SavedFile:
        """Index a saved object; saving the same key again updates its entry and keeps its id."""
        file_id = self._ids_by_key.get(key)
        if file_id is None:
            file_id = self._ids_by_key[key] = next(self._next_id)
        elif self._files[file_id].platform != platform:  # a note is its platform's
            self._unique_ids.pop(file_id, None)
        entry = SavedFile(file_id, key, owner_id, chat_id, size, saved_at, platform)
        self._files[file_id] = entry
        return entry

    async def get_file(self, file_id: int) -> SavedFile | None:
        """The index entry with that id, if any."""
        return self._files.get(file_id)

    async def rename_file(self, file_id: int, new_key: str) -> None:
        """Move the entry to ``new_key``, dropping any other entry of that key; unknown ids are ignored."""
        entry = self._files.get(file_id)
        if entry is None:
            return
        replaced = self._ids_by_key.get(new_key)
        if replaced is not None and replaced != file_id:
            del self._files[replaced]
        del self._ids_by_key[entry.key]
        self._ids_by_key[new_key] = file_id
        self._files[file_id] = dataclasses.replace(entry, key=new_key)

    async def forget_file(self, file_id: int) -> None:
        """Drop the entry, if there is one."""
        entry = self._files.pop(file_id, None)
        if entry is not None:
            del self._ids_by_key[entry.key]

    async def list_files(
        self,
        owner: UserKey | None,
        *,
        limit: int,
        before: tuple[float, int] | None = None,
        after: tuple[float, int] | None = None,
    ) -> tuple[list[SavedFile], bool, int]:
        """A page of entries, newest first, by cursor (see ``interfaces.StateStore.list_files``)."""
        page = page_cursor(before, after)
        entries = [f for f in self._files.values() if owner is None or f.owner == owner]
        total = len(entries)
        entries.sort(key=_newest_first)
        if page is not None and page[0] == "after":  # the closest newer: walk from the oldest end
            newer = [f for f in reversed(entries) if (f.saved_at, f.id) > page[1]]
            return newer[:limit][::-1], len(newer) > limit, total
        if page is not None:
            entries = [f for f in entries if (f.saved_at, f.id) < page[1]]
        return entries[:limit], len(entries) > limit, total

    async def get_cursor(self, platform: str) -> str | None:
        """Where the platform's poller stopped reading, if it was saved."""
        return self._cursors.get(platform)

    async def set_cursor(self, platform: str, value: str) -> None:
        """Save the platform's read position."""
        self._cursors[platform] = value

    async def set_file_unique_id(self, platform: str, file_id: int, file_unique_id: str | None) -> None:
        """Note which of the platform's files the entry's object holds (None: not known).

        Ids unknown, or of another platform's entry, are ignored.
        """
        entry = self._files.get(file_id)
        if entry is None or entry.platform != platform:
            return
        if file_unique_id is None:
            self._unique_ids.pop(file_id, None)
        else:
            self._unique_ids[file_id] = file_unique_id

    async def find_files_by_unique_id(
        self, platform: str, file_unique_id: str, *, limit: int
    ) -> list[SavedFile]:
        """At most ``limit`` of the platform's entries noted as holding that file, newest first."""
        noted = (self._files.get(i) for i, uid in self._unique_ids.items() if uid == file_unique_id)
        entries = [e for e in noted if e is not None and e.platform == platform]  # None: dropped since
        return sorted(entries, key=_newest_first)[: max(limit, 0)]

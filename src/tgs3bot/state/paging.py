"""The cursor of a ``StateStore.list_files`` call, read the same way by every backend."""

from __future__ import annotations

from typing import Literal

Cursor = tuple[float, int]  # an entry's (saved_at, id); the entry may be gone since


def page_cursor(
    before: Cursor | None, after: Cursor | None
) -> tuple[Literal["before", "after"], Cursor] | None:
    """The call's one cursor and its direction; None for the first page (newest entries)."""
    if before is not None and after is not None:
        raise ValueError("list_files takes one cursor: before or after")
    if after is not None:
        return "after", after
    if before is not None:
        return "before", before
    return None

"""/files: the saved files, newest first, ten to a page, with Prev/Next buttons that edit the list.

Served from the state's index (S3 lists keys in name order and knows no owner). In an open bot a
user sees only the files they saved; in a closed bot (an allowlist) everyone allowed sees all.
The entries of a page are checked against the bucket, so a file deleted by someone else is shown
as gone (and dropped from the index) instead of being offered as if it were there.

Paging is by cursor, not by offset: the list's order is ``(saved_at, id)`` descending, Next asks
for the entries older than the last one shown, and Prev for the entries newer than the first
one shown (a symmetric ``after`` cursor, so the button data stays one cursor long, well within
Telegram's 64 bytes, however deep the user pages). Entries dropped or added meanwhile therefore
never shift another one out of view. Prev that reaches the top shows the first page itself, so
the first page is always the ten newest. The page number in the data is only for the header.

The lines are numbered, and each file still in the bucket gets a "🔗 <number>" button that asks
for its share link (``link:<id>``, at most 24 bytes; ``handlers.links``). A platform that shows
few buttons under a message (``Policy.max_buttons``: VK's 10) gets shorter pages, so that every
line's button and Prev/Next still fit (eight lines on VK).

Button data comes from the client and may be forged or left over from an older version: data that
is not exactly ``files:next|prev:<page>:<saved_at>:<id>`` within bounds is a stale button.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass

import structlog

from tgs3bot import replies
from tgs3bot.context import Context, Policy
from tgs3bot.events import Button, Event, Keyboard, UserKey
from tgs3bot.handlers.documents import link_button
from tgs3bot.handlers.entries import check_entry
from tgs3bot.handlers.rename import parse_file_id
from tgs3bot.interfaces import SavedFile
from tgs3bot.utils import human_size

log = structlog.get_logger(__name__)

PAGE_SIZE = 10
PAGING_BUTTONS = 2  # Prev and Next
PAGE_PREFIX = "files:"  # callback data of the Prev/Next buttons: files:next|prev:<page>:<cursor>
MAX_PAGE = 99_999  # the header's page number; five digits keep the data under 64 bytes
MAX_DATA_BYTES = 64  # Telegram's limit for callback_data
LINKS_PER_ROW = 5  # "🔗 1" … "🔗 10": two rows of share-link buttons, one per numbered line
MAX_SHOWN_NAME = 120  # characters; ten long names must fit Telegram's 4096-character message
_DATA = re.compile(r"files:(next|prev):([0-9]{1,5}):([-+.e0-9]{1,24}):([0-9]{1,19})")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a Prev/Next button asks for."""

    older: bool  # Next: the entries older than the cursor; Prev: the ones newer than it
    page: int  # the number the page shown gets in its header
    cursor: tuple[float, int]  # (saved_at, id) of the entry the page starts after


@dataclass(frozen=True, slots=True)
class _Page:
    files: list[SavedFile]
    number: int
    total: int
    newer: bool  # a Prev button
    older: bool  # a Next button


def page_data(request: PageRequest) -> str:
    """The callback data of a Prev/Next button (repr() gives the float back exactly)."""
    saved_at, file_id = request.cursor
    return f"{PAGE_PREFIX}{'next' if request.older else 'prev'}:{request.page}:{saved_at!r}:{file_id}"


def page_request(event: Event) -> PageRequest | None:
    """What a Prev/Next button asks for, or None if its data is malformed or out of bounds."""
    found = _DATA.fullmatch(event.callback_data or "")
    if found is None:
        return None
    direction, page, saved_at, file_id = found.groups()
    try:
        when = float(saved_at)
    except ValueError:
        return None
    number, entry = int(page), parse_file_id(file_id)
    if entry is None or not 1 <= number <= MAX_PAGE or not math.isfinite(when):
        return None
    return PageRequest(older=direction == "next", page=number, cursor=(when, entry))


def _shown(key: str) -> str:
    return key if len(key) <= MAX_SHOWN_NAME else key[: MAX_SHOWN_NAME - 1] + "…"


def _line(number: int, file: SavedFile, present: bool) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(file.saved_at))
    if not present:
        return f"{number}. {_shown(file.key)} — gone from the bucket"
    return f"{number}. {_shown(file.key)} — {human_size(file.size)} — {when}"


def _buttons(page: _Page) -> Keyboard | None:
    first, last = page.files[0], page.files[-1]
    row = []
    if page.newer:
        prev = PageRequest(older=False, page=page.number - 1, cursor=(first.saved_at, first.id))
        row.append(Button("« Prev", page_data(prev)))
    if page.older:
        following = min(page.number + 1, MAX_PAGE)
        row.append(Button("Next »", page_data(PageRequest(True, following, (last.saved_at, last.id)))))
    return (tuple(row),) if row else None


def page_size(policy: Policy) -> int:
    """Lines to a page: ten, or fewer where a link button per line and Prev/Next would not fit."""
    if policy.max_buttons is None:
        return PAGE_SIZE
    return max(1, min(PAGE_SIZE, policy.max_buttons - PAGING_BUTTONS))


def _with_links(checked: list[tuple[SavedFile, bool]], paging: Keyboard | None) -> Keyboard | None:
    """A share-link button per file still in the bucket ("🔗 3" for line 3), above Prev/Next."""
    links = [link_button(f.id, f"🔗 {n}") for n, (f, present) in enumerate(checked, 1) if present]
    rows = tuple(tuple(links[i : i + LINKS_PER_ROW]) for i in range(0, len(links), LINKS_PER_ROW))
    return (rows + (paging or ())) or None


async def _fetch(ctx: Context, owner: UserKey | None, request: PageRequest | None) -> _Page:
    """The entries a request asks for; the first page when there is none or it leads nowhere."""
    size = page_size(ctx.policy)
    if request is not None and request.older:
        files, more, total = await ctx.state.list_files(owner, limit=size, before=request.cursor)
        if files:
            return _Page(files, max(request.page, 2), total, newer=True, older=more)
    elif request is not None:
        files, more, total = await ctx.state.list_files(owner, limit=size, after=request.cursor)
        if more:  # not the top yet (at the top, the first page below is the full ten newest)
            return _Page(files, max(request.page, 2), total, newer=True, older=True)
    files, more, total = await ctx.state.list_files(owner, limit=size)
    return _Page(files, 1, total, newer=False, older=more)


async def _page(ctx: Context, user: UserKey, request: PageRequest | None) -> tuple[str, Keyboard | None]:
    owner = user if ctx.policy.open_bot else None  # per platform: a VK user 5 is not Telegram's 5
    page = await _fetch(ctx, owner, request)
    if not page.files:
        return replies.NO_FILES, None
    checked = await asyncio.gather(*(check_entry(ctx, f) for f in page.files))
    title = "Your files" if owner is not None else "Saved files"
    header = f"{title}, newest first (page {page.number}; {page.total} in all):"
    lines = [_line(n, f, present) for n, (f, present) in enumerate(checked, 1)]
    return "\n".join([header, *lines]), _with_links(checked, _buttons(page))


async def list_files(ctx: Context, event: Event) -> None:
    """/files: the first page."""
    text, buttons = await _page(ctx, event.user, None)
    await ctx.platform.send_text(event.chat_id, text, buttons=buttons)


async def turn_page(ctx: Context, event: Event) -> None:
    """Prev/Next: edit the list in place; a malformed or outdated button only gets an answer."""
    request = page_request(event)
    if request is None:
        log.info("files_button_stale", data=(event.callback_data or "")[:MAX_DATA_BYTES])
        if event.callback_id:
            await ctx.platform.answer_callback(event.callback_id, replies.FILES_BUTTON_STALE)
        return
    if event.callback_id:
        await ctx.platform.answer_callback(event.callback_id)
    text, buttons = await _page(ctx, event.user, request)
    await ctx.platform.edit_text(event.chat_id, event.message_id, text, buttons=buttons)

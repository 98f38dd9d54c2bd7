"""/files: the saved files, newest first, ten to a page, with Prev/Next buttons that edit the list.

Served from the state's index (S3 lists keys in name order and knows no owner). In an open bot a
user sees only the files they saved; in a closed bot (an allowlist) everyone allowed sees all.
The entries of a page are checked against the bucket, so a file deleted by someone else is shown
as gone (and dropped from the index) instead of being offered as if it were there.
"""

from __future__ import annotations

import asyncio
import time

from tgs3bot import replies
from tgs3bot.context import Context
from tgs3bot.events import Button, Event, Keyboard
from tgs3bot.interfaces import SavedFile
from tgs3bot.utils import human_size

PAGE_SIZE = 10
PAGE_PREFIX = "files:"  # callback data of the Prev/Next buttons, followed by the page number
MAX_SHOWN_NAME = 120  # characters; ten long names must fit Telegram's 4096-character message


def page_number(event: Event) -> int | None:
    """The page a Prev/Next button asks for (``files:2``), or None if the data is not ours."""
    data = event.callback_data or ""
    number = data[len(PAGE_PREFIX) :] if data.startswith(PAGE_PREFIX) else ""
    return int(number) if number.isdecimal() else None


def _shown(key: str) -> str:
    return key if len(key) <= MAX_SHOWN_NAME else key[: MAX_SHOWN_NAME - 1] + "…"


def _line(number: int, file: SavedFile, present: bool) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(file.saved_at))
    if not present:
        return f"{number}. {_shown(file.key)} — gone from the bucket"
    return f"{number}. {_shown(file.key)} — {human_size(file.size)} — {when}"


def _buttons(page: int, pages: int) -> Keyboard | None:
    row = []
    if page > 0:
        row.append(Button("« Prev", f"{PAGE_PREFIX}{page - 1}"))
    if page + 1 < pages:
        row.append(Button("Next »", f"{PAGE_PREFIX}{page + 1}"))
    return (tuple(row),) if row else None


async def _page(ctx: Context, user_id: int, page: int) -> tuple[str, Keyboard | None]:
    owner = user_id if ctx.policy.open_bot else None
    files, total = await ctx.state.list_files(owner, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    if total == 0:
        return replies.NO_FILES, None
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    if not files:  # the list shrank since the buttons were drawn: show the last page
        return await _page(ctx, user_id, pages - 1)
    present = await asyncio.gather(*(ctx.storage.head(f.key) for f in files))
    for file, found in zip(files, present, strict=True):
        if found is None:
            await ctx.state.forget_file(file.id)
    first = page * PAGE_SIZE + 1
    title = "Your files" if owner is not None else "Saved files"
    header = f"{title}, newest first ({first}–{first + len(files) - 1} of {total}):"
    lines = [_line(first + n, f, p is not None) for n, (f, p) in enumerate(zip(files, present, strict=True))]
    return "\n".join([header, *lines]), _buttons(page, pages)


async def list_files(ctx: Context, event: Event) -> None:
    """/files: the first page."""
    text, buttons = await _page(ctx, event.user_id, 0)
    await ctx.platform.send_text(event.chat_id, text, buttons=buttons)


async def turn_page(ctx: Context, event: Event) -> None:
    """Prev/Next: edit the list in place."""
    if event.callback_id:
        await ctx.platform.answer_callback(event.callback_id)
    text, buttons = await _page(ctx, event.user_id, page_number(event) or 0)
    await ctx.platform.edit_text(event.chat_id, event.message_id, text, buttons=buttons)

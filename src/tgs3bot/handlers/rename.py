"""The rename dialog: the button under a saved file, the question, the new name, the move.

The button's data carries the file's index id, never its key; a press is honoured only for the
user who saved that file. The object moves by server-side copy and delete, and an existing name
is never overwritten. The question stays open until a rename succeeds, /cancel, or it expires:
a refused name (taken, empty once made safe) asks for another one.

Button data comes from the client and may be forged: an id that is not 1 to ``MAX_FILE_ID``
ASCII digits (SQLite's INTEGER range; a 57-digit number would overflow it) is treated as a
button whose file is no longer known.
"""

from __future__ import annotations

import re
import time

import structlog

from tgs3bot import replies
from tgs3bot.context import Context
from tgs3bot.errors import TransferError
from tgs3bot.events import Event
from tgs3bot.filenames import content_disposition, safe_key
from tgs3bot.handlers.documents import KEEP_PREFIX, RENAME_PREFIX
from tgs3bot.interfaces import Dialog, SavedFile

log = structlog.get_logger(__name__)

RENAME = "rename"
DIALOG_TTL_S = 24 * 3600  # a question left unanswered for a day is forgotten
MAX_FILE_ID = 2**63 - 1  # ids are SQLite INTEGERs (and Redis INCRs): nothing bigger names a file
_FILE_ID = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdecimal() would take "١٢" too


class FileGone(TransferError):
    """The file left the bucket: there is nothing left to rename, so the question closes."""


def parse_file_id(text: str) -> int | None:
    """An index id written as decimal digits, or None if it is not one (malformed or out of range)."""
    if not _FILE_ID.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_FILE_ID else None


def button_file_id(event: Event, prefix: str) -> int | None:
    """The file id in a button's data (``rename:42``), or None if the data is not ours or not valid."""
    data = event.callback_data or ""
    return parse_file_id(data[len(prefix) :]) if data.startswith(prefix) else None


async def _own_file(ctx: Context, event: Event, file_id: int | None) -> SavedFile | None:
    """The file the button refers to, if it exists and the presser saved it; else say why."""
    file = await ctx.state.get_file(file_id) if file_id is not None else None
    if file is not None and file.owner == event.user:  # the same number on another platform is not them
        return file
    reason = "that file is no longer known" if file is None else "you can rename only the files you saved"
    log.info("rename_refused", file_id=file_id, reason=reason)
    if event.callback_id:
        await ctx.platform.answer_callback(event.callback_id, reason)
    await ctx.platform.send_text(event.chat_id, replies.document_not_renamed(reason))
    return None


async def start_rename(ctx: Context, event: Event) -> None:
    """The Rename button: ask for the new name; the chat's next text answers."""
    file = await _own_file(ctx, event, button_file_id(event, RENAME_PREFIX))
    if file is None:
        return
    await ctx.state.set_dialog(
        event.platform, event.chat_id, Dialog(kind=RENAME, file_id=file.id, started_at=time.time())
    )
    if event.callback_id:
        await ctx.platform.answer_callback(event.callback_id)
    await ctx.platform.send_text(event.chat_id, replies.rename_prompt(file.key))


async def keep_name(ctx: Context, event: Event) -> None:
    """The Keep button: nothing to do but say so (and close a rename dialog of that file)."""
    file_id = button_file_id(event, KEEP_PREFIX)
    dialog = await ctx.state.get_dialog(event.platform, event.chat_id)
    if dialog is not None and dialog.file_id == file_id:
        await ctx.state.set_dialog(event.platform, event.chat_id, None)
    if event.callback_id:
        await ctx.platform.answer_callback(event.callback_id, "The name stays.")


async def finish_rename(ctx: Context, event: Event) -> None:
    """The answer to the rename question: make the name safe, check it is free, move the object.

    The question closes when the rename succeeds, when there is nothing left to rename, or when it
    has expired; a refused name leaves it open, and the reply asks for another name.
    """
    dialog = await ctx.state.get_dialog(event.platform, event.chat_id)
    if dialog is None:
        return
    file = await _own_file(ctx, event, dialog.file_id)
    if file is None or time.time() - dialog.started_at > DIALOG_TTL_S:
        await ctx.state.set_dialog(event.platform, event.chat_id, None)
        if file is not None:
            await ctx.platform.send_text(event.chat_id, replies.rename_expired(file.key))
        return
    try:
        new_key, note = await _move(ctx, file, event.text or "")
    except TransferError as exc:
        await _refused(ctx, event, file, exc)
        return
    await ctx.state.set_dialog(event.platform, event.chat_id, None)
    log.info("document_renamed", old_key=file.key, new_key=new_key)
    await ctx.platform.send_text(
        event.chat_id, replies.document_renamed(file.key, new_key, note=note), reply_to=event.message_id
    )


async def _refused(ctx: Context, event: Event, file: SavedFile, exc: TransferError) -> None:
    """Say why the name was refused; the question stays open unless the file itself is gone."""
    gone = isinstance(exc, FileGone)
    log.info("document_not_renamed", key=file.key, reason=exc.reason, asking_again=not gone)
    if gone:
        await ctx.state.set_dialog(event.platform, event.chat_id, None)
        text = replies.document_not_renamed(exc.reason)
    else:
        text = replies.rename_refused_ask_again(exc.reason)
    await ctx.platform.send_text(event.chat_id, text, reply_to=event.message_id)


async def _move(ctx: Context, file: SavedFile, wanted: str) -> tuple[str, str | None]:
    name = safe_key(wanted.strip(), file_unique_id="", mime_type=None)
    if name.generated:
        raise TransferError("that name is empty once made safe for the bucket")
    if name.key == file.key:
        raise TransferError(f"the file is already called «{file.key}»")
    first, second = sorted((file.key, name.key))  # one lock order, so two renames cannot deadlock
    async with ctx.key_locks.hold(first), ctx.key_locks.hold(second):
        if await ctx.storage.head(name.key) is not None:
            raise TransferError(f"a file named «{name.key}» already exists")
        moved = await ctx.storage.rename(
            file.key, name.key, content_disposition=content_disposition(name.key)
        )
        if not moved:
            await ctx.state.forget_file(file.id)
            raise FileGone(f"«{file.key}» is no longer in the bucket")
        await ctx.state.rename_file(file.id, name.key)
    note = "The name was made safe for the bucket." if name.changed else None
    return name.key, note


async def cancel(ctx: Context, event: Event) -> None:
    """/cancel: close the open dialog, if any."""
    dialog = await ctx.state.get_dialog(event.platform, event.chat_id)
    if dialog is None:
        await ctx.platform.send_text(event.chat_id, replies.NOTHING_TO_CANCEL)
        return
    await ctx.state.set_dialog(event.platform, event.chat_id, None)
    file = await ctx.state.get_file(dialog.file_id)
    await ctx.platform.send_text(event.chat_id, replies.rename_cancelled(file.key if file else "the file"))

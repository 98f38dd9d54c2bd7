"""The document flow: ``[document]`` at once, stream the file into the bucket, then the outcome.

Every failure before the put ends in ``[document has not been saved]`` with the reason, and leaves
no partial object (the storage aborts its multipart upload). Once the put has succeeded the file is
saved, and the outcome says so whatever goes wrong after it (the index write, the progress message,
a shutdown). The transfer itself is ``saving.Save``.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from tgs3bot import replies
from tgs3bot.context import Context
from tgs3bot.errors import FileUnavailable, PlatformError, TransferError
from tgs3bot.events import Button, Event, Keyboard
from tgs3bot.filenames import SafeName, display_name, safe_key
from tgs3bot.handlers.saving import Save

log = structlog.get_logger(__name__)

RENAME_PREFIX = "rename:"  # callback data of the buttons under a saved file, followed by its index id
KEEP_PREFIX = "keep:"
LINK_PREFIX = "link:"  # the share-link buttons (under a saved file, in /files), followed by its index id
RESTART_NOTICE_TIMEOUT_S = 5
SOMETHING_WENT_WRONG = "something went wrong on our side; try again"


async def save_document(ctx: Context, event: Event) -> None:
    """Save the event's document under its (safe) file name and tell the user how it went."""
    document = event.document
    if document is None:
        raise ValueError("save_document needs an event with a document")
    name = safe_key(document.file_name, file_unique_id=document.file_unique_id, mime_type=document.mime_type)
    await _acknowledge(ctx, event, display_name(document.file_name or name.key))
    save = Save(ctx, event, document, name.key)
    try:
        await save.run()
    except (TransferError, FileUnavailable) as exc:
        log.warning("document_not_saved", key=name.key, reason=exc.reason, file_size=document.file_size)
        await _reply(ctx, event, replies.document_not_saved(exc.reason))
        return
    except asyncio.CancelledError:
        await _on_shutdown(ctx, event, save, name)
        raise
    except Exception:
        if save.saved is None:
            log.exception("document_save_failed", key=name.key)
            await _reply(ctx, event, replies.document_not_saved(SOMETHING_WENT_WRONG))
            return
        log.exception("document_save_epilogue_failed", key=name.key)  # after the put: it is saved
    await _tell_saved(ctx, event, save, name)


def rename_buttons(file_id: int) -> Keyboard:
    """The buttons under a saved file: rename it or keep its name, and a share link."""
    return (
        (
            Button(replies.RENAME_BUTTON, f"{RENAME_PREFIX}{file_id}"),
            link_button(file_id, replies.LINK_BUTTON),
        ),
        (Button(replies.KEEP_BUTTON, f"{KEEP_PREFIX}{file_id}"),),
    )


def link_button(file_id: int, text: str) -> Button:
    """A button that asks for a share link of the file with that index id (``handlers.links``)."""
    return Button(text, f"{LINK_PREFIX}{file_id}")


async def _acknowledge(ctx: Context, event: Event, name: str) -> None:
    """``[document]`` at once; if Telegram cannot take it even after retries, save all the same."""
    try:
        await ctx.platform.send_text(
            event.chat_id, replies.document_received(name), reply_to=event.message_id
        )
    except PlatformError as exc:
        log.warning("document_acknowledgement_failed", error=str(exc))


async def _tell_saved(ctx: Context, event: Event, save: Save, name: SafeName) -> None:
    """``[document has been saved]``, with the buttons if the file is in the index."""
    saved = save.saved
    if saved is None:
        raise RuntimeError("_tell_saved before the put")
    log.info(
        "document_saved",
        key=saved.key,
        size=saved.size,
        replaced=saved.replaced,
        indexed=bool(save.entry),
        already=saved.already,
        copied=saved.copied,
    )
    note = _name_note(name)
    text = replies.document_saved(
        saved.key, saved.size, replaced=saved.replaced, note=note, already=saved.already
    )
    buttons = rename_buttons(save.entry.id) if save.entry is not None else None
    try:
        await ctx.platform.send_text(event.chat_id, text, reply_to=event.message_id, buttons=buttons)
    except PlatformError as exc:
        # Not re-raised: the worker's apology would say the file was not saved.
        log.warning("document_saved_reply_failed", key=saved.key, error=str(exc))


async def _on_shutdown(ctx: Context, event: Event, save: Save, name: SafeName) -> None:
    """Shutdown cancelled the save: say how it ended before the worker goes.

    Before the put, the upload was aborted and the update stays queued to run after the restart.
    After it, the file is saved: say so, and mark the update handled so the restart does not save
    it a second time.
    """
    if save.saved is None:
        notice = _reply(ctx, event, replies.document_not_saved(replies.RESTARTING))
    else:
        notice = _saved_on_shutdown(ctx, event, save, name)
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(notice, RESTART_NOTICE_TIMEOUT_S)


async def _saved_on_shutdown(ctx: Context, event: Event, save: Save, name: SafeName) -> None:
    await ctx.state.mark_handled(event.platform, event.update_id)
    await _tell_saved(ctx, event, save, name)


async def _reply(ctx: Context, event: Event, text: str) -> None:
    await ctx.platform.send_text(event.chat_id, text, reply_to=event.message_id)


def _name_note(name: SafeName) -> str | None:
    if name.generated:
        return "The file had no usable name, so the bot gave it this one."
    if name.changed:
        return (
            "The name was made safe for the bucket (no folders, no control or invisible characters, "
            "Unicode normalised, at most 1024 bytes)."
        )
    return None

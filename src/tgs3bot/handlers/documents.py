"""The document flow: ``[document]`` at once, stream the file into the bucket, then the outcome.

Every failure ends in ``[document has not been saved]`` with the reason, and leaves no partial
object (the storage aborts its multipart upload).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import structlog

from tgs3bot import replies
from tgs3bot.context import Context
from tgs3bot.errors import FileUnavailable, TransferError
from tgs3bot.events import Button, Document, Event, Keyboard
from tgs3bot.filenames import SafeName, content_disposition, safe_key
from tgs3bot.interfaces import ObjectInfo, ReplaceCheck, StoredObject
from tgs3bot.progress import TransferMeter, reporting
from tgs3bot.utils import human_size

log = structlog.get_logger(__name__)

RENAME_PREFIX = "rename:"  # callback data of the buttons under a saved file, followed by its index id
KEEP_PREFIX = "keep:"
OWNER_KEY = "user-id"  # object metadata naming who saved it; S3 sends it as x-amz-meta-user-id
RESTART_NOTICE_TIMEOUT_S = 5


@dataclass(frozen=True, slots=True)
class Saved:
    """What a successful save produced."""

    key: str
    size: int
    replaced: bool


async def save_document(ctx: Context, event: Event) -> None:
    """Save the event's document under its (safe) file name and tell the user how it went."""
    document = event.document
    if document is None:
        raise ValueError("save_document needs an event with a document")
    name = safe_key(document.file_name, file_unique_id=document.file_unique_id, mime_type=document.mime_type)
    await ctx.platform.send_text(
        event.chat_id, replies.document_received(document.file_name or name.key), reply_to=event.message_id
    )
    try:
        saved = await _save(ctx, event, document, name.key)
    except (TransferError, FileUnavailable) as exc:
        log.warning("document_not_saved", key=name.key, reason=exc.reason, file_size=document.file_size)
        await _reply(ctx, event, replies.document_not_saved(exc.reason))
        return
    except asyncio.CancelledError:
        # Shutdown ran out of time: the upload was aborted, and the update stays queued to run
        # again after the restart; say so before the worker goes.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            notice = _reply(ctx, event, replies.document_not_saved(replies.RESTARTING))
            await asyncio.wait_for(notice, RESTART_NOTICE_TIMEOUT_S)
        raise
    except Exception:
        log.exception("document_save_failed", key=name.key)
        await _reply(ctx, event, replies.document_not_saved("something went wrong on our side; try again"))
        return
    log.info("document_saved", key=saved.key, size=saved.size, replaced=saved.replaced)
    entry = await ctx.state.record_file(
        saved.key, owner_id=event.user_id, chat_id=event.chat_id, size=saved.size, saved_at=time.time()
    )
    text = replies.document_saved(saved.key, saved.size, replaced=saved.replaced, note=_name_note(name))
    await ctx.platform.send_text(
        event.chat_id, text, reply_to=event.message_id, buttons=rename_buttons(entry.id)
    )


def rename_buttons(file_id: int) -> Keyboard:
    """The buttons under a saved file: rename it, or keep its name."""
    return (
        (
            Button(replies.RENAME_BUTTON, f"{RENAME_PREFIX}{file_id}"),
            Button(replies.KEEP_BUTTON, f"{KEEP_PREFIX}{file_id}"),
        ),
    )


async def _reply(ctx: Context, event: Event, text: str) -> None:
    await ctx.platform.send_text(event.chat_id, text, reply_to=event.message_id)


def _name_note(name: SafeName) -> str | None:
    if name.generated:
        return "The file had no usable name, so the bot gave it this one."
    if name.changed:
        return (
            "The name was made safe for the bucket (no folders, no control characters, at most 1024 bytes)."
        )
    return None


async def _save(ctx: Context, event: Event, document: Document, key: str) -> Saved:
    limit = ctx.policy.download_limit
    if document.file_size is not None and document.file_size > limit:
        raise TransferError(
            f"the file is {human_size(document.file_size)}, and Telegram lets bots download "
            f"at most {human_size(limit)}"
        )
    info = ObjectInfo(
        content_type=document.mime_type or "application/octet-stream",
        content_disposition=content_disposition(key),
        metadata={
            OWNER_KEY: str(event.user_id),
            "chat-id": str(event.chat_id),
            "file-unique-id": document.file_unique_id,
        },
    )
    meter = TransferMeter(document.file_size)
    async with (
        ctx.key_locks.hold(key),
        ctx.platform.open_file(document) as chunks,
        reporting(ctx.platform, event.chat_id, key, meter),
    ):
        result = await ctx.storage.save(
            key, meter.count(chunks), info, document.file_size, may_replace=_owner_rule(ctx, event, key)
        )
    return Saved(key=key, size=result.size, replaced=result.replaced)


def _owner_rule(ctx: Context, event: Event, key: str) -> ReplaceCheck:
    """In an open bot a name belongs to whoever saved it first; in a closed one the team shares names."""

    def may_replace(existing: StoredObject) -> None:
        if ctx.policy.open_bot and existing.metadata.get(OWNER_KEY) != str(event.user_id):
            raise TransferError(
                f"the name «{key}» is taken by a file someone else saved; rename your file and send it again"
            )

    return may_replace

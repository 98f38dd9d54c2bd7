"""Share links: the 🔗 Link button (under a saved file, and per file in /files) answers with a
presigned download URL that expires after TGS3BOT_LINK_TTL.

Who gets one: the file's owner, the (platform, user) pair that saved it, as for Rename; in a
closed bot (an allowlist) anyone allowed on either platform, as they see every file in /files
too. The button's data carries the file's index id, never its key (as Rename's does), so a forged
or left-over button is answered like the other stale buttons when the id is not in the index or
its object has left the bucket: the object is checked with a HEAD (and a gone one dropped from
the index, ``handlers.entries``) before the link is signed, so no link is ever given for a gone
file. Signing itself is local (``storage.links``).
"""

from __future__ import annotations

import structlog

from tgs3bot import replies
from tgs3bot.context import Context
from tgs3bot.errors import TransferError
from tgs3bot.events import Event
from tgs3bot.handlers.documents import LINK_PREFIX
from tgs3bot.handlers.entries import check_entry
from tgs3bot.handlers.rename import button_file_id
from tgs3bot.interfaces import SavedFile

log = structlog.get_logger(__name__)


def may_share(ctx: Context, event: Event, file: SavedFile) -> bool:
    """Whether the presser may have a link: the owner (platform and user), or anyone allowed in a
    closed bot (as /files lists everyone's files there)."""
    return not ctx.policy.open_bot or file.owner == event.user  # VK user 7 is not Telegram's 7


async def share_link(ctx: Context, event: Event) -> None:
    """The Link button: check the file, sign a link, and send it with when it expires."""
    file = await _shareable(ctx, event)
    if file is None:
        return
    try:
        file, present = await check_entry(ctx, file)
        link = await ctx.storage.share_link(file.key) if present else None
    except TransferError as exc:
        log.warning("share_link_failed", key=file.key, file_id=file.id, reason=exc.reason)
        await _answer(ctx, event, None)
        await ctx.platform.send_text(event.chat_id, replies.link_failed(exc.reason))
        return
    if link is None:
        log.info("link_button_stale", file_id=file.id, key=file.key, reason="gone from the bucket")
        await _answer(ctx, event, replies.LINK_FILE_GONE)
        return
    # Not the URL: it is a credential of its own until it expires.
    log.info("share_link_given", key=file.key, file_id=file.id, expires_at=link.expires_at)
    await _answer(ctx, event, None)
    text = replies.share_link(file.key, link.url, expires_at=link.expires_at, ttl_s=link.ttl_s)
    await ctx.platform.send_text(event.chat_id, text, reply_to=event.message_id)


async def _shareable(ctx: Context, event: Event) -> SavedFile | None:
    """The file the button names, if it is in the index and the presser may share it; else say why."""
    file_id = button_file_id(event, LINK_PREFIX)
    file = await ctx.state.get_file(file_id) if file_id is not None else None
    if file is None:
        log.info("link_button_stale", file_id=file_id, data=(event.callback_data or "")[:64])
        await _answer(ctx, event, replies.LINK_STALE)
        return None
    if not may_share(ctx, event, file):
        log.info(
            "share_link_refused",
            file_id=file.id,
            user_id=event.user_id,
            platform=event.platform,
            owner_id=file.owner_id,
            owner_platform=file.platform,
        )
        await _answer(ctx, event, replies.LINK_NOT_YOURS)
        return None
    return file


async def _answer(ctx: Context, event: Event, text: str | None) -> None:
    """Stop the button's spinner, with ``text`` as its notice (a message where there is no spinner)."""
    if event.callback_id:
        await ctx.platform.answer_callback(event.callback_id, text)
    elif text:
        await ctx.platform.send_text(event.chat_id, text)

"""The short answers: greeting, access denied, document required, and updates left alone."""

from __future__ import annotations

import structlog

from tgs3bot import replies
from tgs3bot.context import Context
from tgs3bot.events import Event, EventKind
from tgs3bot.handlers.documents import save_document

log = structlog.get_logger(__name__)


async def greet(ctx: Context, event: Event) -> None:
    """Greet a chat's first message; a document in it is then saved as usual (never dropped)."""
    await ctx.state.mark_greeted(event.platform, event.chat_id)
    await ctx.platform.send_text(event.chat_id, replies.GREETING)
    if event.document is not None:
        await save_document(ctx, event)


async def deny_access(ctx: Context, event: Event) -> None:
    """Tell someone outside the allowlist that the bot is not theirs to use."""
    log.info("access_denied", user_id=event.user_id)
    if event.kind is EventKind.CALLBACK and event.callback_id:
        await ctx.platform.answer_callback(event.callback_id)
    await ctx.platform.send_text(event.chat_id, replies.ACCESS_DENIED)


async def require_document(ctx: Context, event: Event) -> None:
    """Answer anything that is not a document (text, photo, sticker, unknown command…)."""
    await ctx.platform.send_text(event.chat_id, replies.DOCUMENT_REQUIRED, reply_to=event.message_id)


async def show_help(ctx: Context, event: Event) -> None:
    """/help: what the bot does and its commands."""
    await ctx.platform.send_text(event.chat_id, replies.HELP)


async def ignore(_ctx: Context, event: Event) -> None:
    """Leave the update alone (groups and channels get no reply; nothing is saved)."""
    log.debug("update_ignored", kind=event.kind.value, private=event.private)


async def answer_unknown_callback(ctx: Context, event: Event) -> None:
    """Stop the spinner of a button the bot does not (or no longer) know."""
    if event.callback_id:
        await ctx.platform.answer_callback(event.callback_id, "This button no longer works.")

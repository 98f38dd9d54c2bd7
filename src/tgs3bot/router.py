"""Routing: an ordered list of (predicate, handler) rules; the first rule that matches wins.

Each predicate is a small async function of the context and the event, so the decision is easy to
read and to test on its own; the last rule matches everything and answers ``[document is required]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tgs3bot.context import Context
from tgs3bot.events import Event, EventKind
from tgs3bot.handlers import basics, links, listing, rename
from tgs3bot.handlers.documents import KEEP_PREFIX, LINK_PREFIX, RENAME_PREFIX, save_document

Predicate = Callable[[Context, Event], Awaitable[bool]]
Handler = Callable[[Context, Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    """One rule: a name for the logs, when it applies, and what handles it."""

    name: str
    matches: Predicate
    handler: Handler


class Router:
    """Dispatches each event to the handler of the first matching route."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)

    async def route_for(self, ctx: Context, event: Event) -> Route | None:
        """The first route that matches the event."""
        for route in self.routes:
            if await route.matches(ctx, event):
                return route
        return None

    async def dispatch(self, ctx: Context, event: Event) -> str:
        """Handle the event; return the name of the route that handled it (``unrouted`` if none)."""
        route = await self.route_for(ctx, event)
        if route is None:
            return "unrouted"
        await route.handler(ctx, event)
        return route.name


async def not_private(_ctx: Context, event: Event) -> bool:
    """Groups, supergroups and channels: the bot serves private chats only."""
    return not event.private


async def not_allowed(ctx: Context, event: Event) -> bool:
    """The sender is outside TGS3BOT_ALLOWED_USERS."""
    return not ctx.policy.allows(event.user)


def button(prefix: str) -> Predicate:
    """A press of one of the bot's buttons whose data starts with ``prefix``."""

    async def matches(_ctx: Context, event: Event) -> bool:
        return event.kind is EventKind.CALLBACK and (event.callback_data or "").startswith(prefix)

    return matches


async def is_callback(_ctx: Context, event: Event) -> bool:
    """Any other button press."""
    return event.kind is EventKind.CALLBACK


async def first_message(ctx: Context, event: Event) -> bool:
    """The chat has not been greeted yet."""
    return not await ctx.state.is_greeted(event.platform, event.chat_id)


async def has_document(_ctx: Context, event: Event) -> bool:
    """The message carries a file sent as a document."""
    return event.document is not None


def command(name: str) -> Predicate:
    """The message is the bot command ``name`` (``/files``, ``/files@my_bot``)."""

    async def matches(_ctx: Context, event: Event) -> bool:
        return event.command == name

    return matches


async def answers_rename(ctx: Context, event: Event) -> bool:
    """A plain text (not a command) while the chat is asked for a new name."""
    if not event.text or event.command is not None:
        return False
    dialog = await ctx.state.get_dialog(event.platform, event.chat_id)
    return dialog is not None and dialog.kind == rename.RENAME


async def anything(_ctx: Context, _event: Event) -> bool:
    """The fallback."""
    return True


def build_router() -> Router:
    """The bot's routes, in the order they are tried."""
    return Router(
        [
            Route("not_private", not_private, basics.ignore),
            Route("access_denied", not_allowed, basics.deny_access),
            Route("rename_button", button(RENAME_PREFIX), rename.start_rename),
            Route("keep_button", button(KEEP_PREFIX), rename.keep_name),
            Route("link_button", button(LINK_PREFIX), links.share_link),
            Route("files_page", button(listing.PAGE_PREFIX), listing.turn_page),
            Route("unknown_callback", is_callback, basics.answer_unknown_callback),
            Route("greeting", first_message, basics.greet),
            Route("document", has_document, save_document),
            Route("help", command("/help"), basics.show_help),
            Route("files", command("/files"), listing.list_files),
            Route("cancel", command("/cancel"), rename.cancel),
            Route("rename_answer", answers_rename, rename.finish_rename),
            Route("document_required", anything, basics.require_document),
        ]
    )

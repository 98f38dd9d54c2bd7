"""Routing decisions: which handler answers which event, first match wins."""

from __future__ import annotations

import dataclasses

import pytest

from tests.helpers import make_event
from tgs3bot.context import Context, Policy
from tgs3bot.events import Document, Event, EventKind
from tgs3bot.interfaces import Dialog
from tgs3bot.router import build_router
from tgs3bot.state import MemoryState

DOC = Document(file_id="f", file_unique_id="u", file_name="a.pdf", mime_type=None, file_size=1)


def message(
    *,
    chat: int = 1,
    user: int = 1,
    private: bool = True,
    text: str | None = None,
    document: Document | None = None,
) -> Event:
    """Update 1: message 1 from ``user`` in ``chat``, with only the text or document given."""
    return make_event(1, chat_id=chat, user_id=user, private=private, text=text, document=document)


def press(data: str, *, chat: int = 1, user: int = 1) -> Event:
    """Update 1: ``user`` pressed a button under message 1 in ``chat``, sending ``data``."""
    return make_event(
        1,
        chat_id=chat,
        user_id=user,
        kind=EventKind.CALLBACK,
        text=None,
        callback_id="cb",
        callback_data=data,
    )


async def route(
    event: Event, *, greeted: bool = True, allowed: frozenset[int] = frozenset(), dialog: bool = False
) -> str:
    state = MemoryState()
    if greeted:
        await state.mark_greeted("telegram", event.chat_id)
    if dialog:
        await state.set_dialog("telegram", event.chat_id, Dialog(kind="rename", file_id=1, started_at=0.0))
    policy = Policy(allowed_users=frozenset(("telegram", user) for user in allowed))
    ctx = Context(platform=None, storage=None, state=state, policy=policy)  # type: ignore[arg-type]
    chosen = await build_router().route_for(ctx, event)
    assert chosen is not None
    return chosen.name


@pytest.mark.parametrize(
    ("event", "greeted", "expected"),
    [
        (message(text="/start"), False, "greeting"),
        (message(document=DOC), False, "greeting"),  # greet, then save: the handler does both
        (message(text="/start"), True, "document_required"),
        (message(text="hello"), True, "document_required"),
        (message(text="/unknown"), True, "document_required"),
        (message(), True, "document_required"),  # a photo, sticker, voice…: no text, no document
        (message(document=DOC), True, "document"),
        (message(text="/help"), True, "help"),
        (message(text="/files@tgs3_test_bot"), True, "files"),
        (message(text="/cancel"), True, "cancel"),
        (message(text="hi", private=False), False, "not_private"),
        (message(document=DOC, chat=-5, private=False), True, "not_private"),
        (press("rename:3"), True, "rename_button"),
        (press("keep:3"), True, "keep_button"),
        (press("files:2"), True, "files_page"),
        (press("something-else"), True, "unknown_callback"),
    ],
)
async def test_routes(event: Event, greeted: bool, expected: str) -> None:
    """Each kind of event reaches the handler the spec names for it."""
    assert await route(event, greeted=greeted) == expected


async def test_outsiders_are_denied_before_anything_else() -> None:
    """In a closed bot, someone not allowed gets access_denied, whatever they send."""
    for event in (message(text="/start", user=9), message(document=DOC, user=9), press("files:0", user=9)):
        assert await route(event, greeted=False, allowed=frozenset({1})) == "access_denied"
    assert await route(message(text="/start"), greeted=False, allowed=frozenset({1})) == "greeting"


async def test_an_allowlist_names_a_user_of_one_platform() -> None:
    """Telegram user 1 on the allowlist does not let VK user 1 in: a closed bot is closed on VK too."""
    vk_user = dataclasses.replace(message(text="/start"), platform="vk")
    assert await route(vk_user, greeted=False, allowed=frozenset({1})) == "access_denied"


async def test_a_text_during_the_rename_question_is_the_answer() -> None:
    """While a new name is asked for, a plain text answers it; commands and documents do not."""
    assert await route(message(text="new name.txt"), dialog=True) == "rename_answer"
    assert await route(message(text="/cancel"), dialog=True) == "cancel"
    assert await route(message(text="/start"), dialog=True) == "document_required"
    assert await route(message(document=DOC), dialog=True) == "document"

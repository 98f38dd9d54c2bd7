"""The VK platform: a community's messages through the Bots Long Poll API (SPEC §6).

``start`` checks the token against the community, that the Bots Long Poll API is on with the
event types the bot reads, and takes a long-poll server. ``get_updates`` is one ``a_check``; its
``ts`` is the offset, saved as the platform's cursor in the state store when the poller asks for
the next poll, i.e. once the batch it confirms is journaled. Replies go by ``messages.send`` with a
``random_id`` kept across retries, so VK drops a retried duplicate. The token travels only in POST
bodies (``vk_api``): no URL, log line or error text here carries it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from itertools import chain
from typing import Any, Protocol, TypeVar

import orjson
import structlog
from pydantic import SecretStr

from tgs3bot.config import BackoffConfig
from tgs3bot.errors import (
    PlatformError,
    RetryAfter,
    StartupError,
    TransientError,
    Unauthorized,
    Undeliverable,
)
from tgs3bot.events import Document, Event, Keyboard, UpdateBatch
from tgs3bot.platforms import vk_events, vk_files
from tgs3bot.platforms.vk_api import (
    API_VERSION,
    DEFAULT_API_URL,
    LongPollAnswer,
    LongPollServer,
    RandomIds,
    VkApi,
)

T = TypeVar("T")
log = structlog.get_logger(__name__)

LONG_POLL_WAIT_S = 25  # VK's recommended a_check wait (at most 90)
REQUIRED_EVENTS = ("message_new", "message_event")
STARTUP_BUDGET_S = 10  # every start check, retries included
SNACKBAR_MAX = 90  # characters VK shows in a callback's snackbar
# The Long Poll API version shapes its events: message_event (callback buttons) and the
# {"message", "client_info"} object of message_new came with 5.103.
MIN_LONG_POLL_VERSION = (5, 103)


class CursorStore(Protocol):
    """Where the long-poll ``ts`` is kept between runs (``StateStore`` has these two methods)."""

    async def get_cursor(self, platform: str) -> str | None: ...

    async def set_cursor(self, platform: str, value: str) -> None: ...


class VkPlatform:
    """The VK community client the poller and the handlers use (see ``interfaces.Platform``)."""

    name = vk_events.PLATFORM

    def __init__(
        self,
        token: SecretStr,
        group_id: int,
        *,
        cursors: CursorStore,
        api_url: str = DEFAULT_API_URL,
        download_limit: int = vk_files.DEFAULT_DOWNLOAD_LIMIT,
        backoff: BackoffConfig | None = None,
    ) -> None:
        self._api = VkApi(token, api_url)
        self._group_id = group_id
        self._cursors = cursors
        self._download_limit = download_limit
        self._backoff = backoff or BackoffConfig()
        self._random_ids = RandomIds()
        self._server: LongPollServer | None = None

    def __repr__(self) -> str:
        return f"VkPlatform(group_id={self._group_id})"

    async def start(self) -> None:
        """Check the token and the community's Long Poll settings, and take a long-poll server.

        Every failure is a one-line ``StartupError`` within ``STARTUP_BUDGET_S``.
        """
        try:
            async with asyncio.timeout(STARTUP_BUDGET_S):
                await self._check_group()
                await self._check_long_poll()
                self._server = await self._call(self._fetch_server, "groups.getLongPollServer", quiet=True)
        except TimeoutError:
            raise StartupError(f"the VK API did not answer within {STARTUP_BUDGET_S} s at start") from None
        except PlatformError as exc:
            raise StartupError(f"could not take a VK long-poll server: {exc}") from None

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._api.close()

    async def _check_group(self) -> None:
        try:
            group = await self._call(self._api.own_group, "groups.getById", quiet=True)
        except Unauthorized:
            raise StartupError("VK rejected the community token (error 5): check TGS3BOT_VK_TOKEN") from None
        except PlatformError as exc:
            raise StartupError(f"could not check the VK community token: {exc}") from None
        if group.id != self._group_id:
            raise StartupError(
                f"the VK token is community {group.id}'s, not TGS3BOT_VK_GROUP_ID={self._group_id}'s"
            )

    async def _check_long_poll(self) -> None:
        group = self._group_id
        try:
            settings = await self._call(
                lambda: self._api.long_poll_settings(group), "groups.getLongPollSettings", quiet=True
            )
        except PlatformError as exc:
            # Error 15 here: the token lacks the "manage" right.
            raise StartupError(f"could not read VK community {group}'s Long Poll settings: {exc}") from None
        if not settings.is_enabled:
            raise StartupError(f"the Bots Long Poll API is off for VK community {group}: turn it on")
        missing = [name for name in REQUIRED_EVENTS if not settings.events.get(name)]
        if missing:
            raise StartupError(f"VK community {group}'s Long Poll lacks event types: {', '.join(missing)}")
        if _version(settings.api_version) < MIN_LONG_POLL_VERSION:
            version = settings.api_version or "unset"
            raise StartupError(
                f"VK community {group}'s Long Poll API version is {version}: set {API_VERSION}"
            )

    async def get_updates(self, offset: int | None, timeout_s: int, limit: int = 100) -> UpdateBatch:
        """One long poll from ``offset`` (None: the saved cursor, else the server's ``ts``).

        A given ``offset`` is saved as the cursor first: the poller passes it only once the batch
        it ends is journaled (so a restart polls from there, and VK hands out the rest again).
        VK has no ``limit``: a batch holds whatever VK returns. Errors are raised translated, never
        retried here (the poller decides).
        """
        server = self._server or await self._refresh_server()
        ts = str(offset) if offset is not None else await self._cursors.get_cursor(self.name)
        if offset is not None or ts is None:
            # The first poll ever saves the server's ts too: a crash before its batch is journaled
            # then polls from there again, as Telegram hands out unconfirmed updates again.
            ts = ts or server.ts
            await self._cursors.set_cursor(self.name, ts)
        answer = await self._api.check(server, ts, min(LONG_POLL_WAIT_S, max(timeout_s, 0)))
        if answer.failed is not None:
            return await self._recover(answer, ts)
        if answer.ts is None:
            raise TransientError("VK long poll answered no ts")
        events = tuple(chain.from_iterable(map(_events_of, answer.updates)))
        return UpdateBatch(events=events, next_offset=int(answer.ts))

    async def _recover(self, answer: LongPollAnswer, ts: str) -> UpdateBatch:
        """``failed``: 1 → go on from VK's new ts; 2 → a new key, same ts; 3 → a new key and ts."""
        if answer.failed == 1 and answer.ts is not None:
            log.warning("vk_long_poll_history_lost", asked_ts=ts, new_ts=answer.ts)
            return UpdateBatch(events=(), next_offset=int(answer.ts))
        if answer.failed == 2:
            await self._refresh_server()
            return UpdateBatch(events=(), next_offset=int(ts))
        if answer.failed == 3:
            server = await self._refresh_server()
            log.warning("vk_long_poll_lost", asked_ts=ts, new_ts=server.ts)
            return UpdateBatch(events=(), next_offset=int(server.ts))
        raise TransientError(f"VK long poll answered failed={answer.failed}")

    async def _refresh_server(self) -> LongPollServer:
        self._server = server = await self._fetch_server()
        return server

    async def _fetch_server(self) -> LongPollServer:
        return await self._api.long_poll_server(self._group_id)

    async def send_text(
        self, chat_id: int, text: str, *, reply_to: int | None = None, buttons: Keyboard | None = None
    ) -> int | None:
        """``messages.send``; the message's ``conversation_message_id``, None if VK refuses it for good.

        One ``random_id`` per reply, the same on each retry: VK keeps one message per id.
        """
        params: dict[str, object] = {
            "peer_ids": chat_id,
            "message": text,
            "random_id": self._random_ids.take(),
            "dont_parse_links": 1,  # plain text: a file name never becomes a link preview
            "disable_mentions": 1,
        }
        if buttons:
            params["keyboard"] = vk_events.keyboard(buttons)
        if reply_to:
            forward = {"peer_id": chat_id, "conversation_message_ids": [reply_to], "is_reply": True}
            params["forward"] = orjson.dumps(forward).decode()
        try:
            sent = await self._call(lambda: self._api.send_message(params), "messages.send")
        except Undeliverable as exc:
            log.warning("reply_dropped", chat_id=chat_id, platform=self.name, reason=str(exc))
            return None
        return sent.conversation_message_id

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, *, buttons: Keyboard | None = None
    ) -> bool:
        """``messages.edit`` by conversation message id; False when VK refuses (nothing to retry)."""
        params: dict[str, object] = {
            "peer_id": chat_id,
            "conversation_message_id": message_id,
            "message": text,
            "dont_parse_links": 1,
            "keyboard": vk_events.keyboard(buttons) if buttons else None,
        }
        try:
            await self._call(lambda: self._api.call("messages.edit", params), "messages.edit")
        except PlatformError as exc:
            log.info("edit_refused", chat_id=chat_id, message_id=message_id, reason=str(exc))
            return False
        return True

    async def set_commands(self, commands: Sequence[tuple[str, str]]) -> None:
        """VK has no command menu: nothing to register (commands are typed as text)."""

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """``messages.sendMessageEventAnswer``: stop the button's spinner, ``text`` as a snackbar."""
        try:
            event_id, user_id, peer_id = vk_events.parse_callback_id(callback_id)
        except ValueError:
            log.warning("callback_id_unreadable")  # not one VkPlatform made: nothing to answer
            return
        params: dict[str, object] = {"event_id": event_id, "user_id": user_id, "peer_id": peer_id}
        if text:
            params["event_data"] = orjson.dumps(
                {"type": "show_snackbar", "text": text[:SNACKBAR_MAX]}
            ).decode()
        try:
            await self._call(
                lambda: self._api.call("messages.sendMessageEventAnswer", params),
                "messages.sendMessageEventAnswer",
            )
        except PlatformError as exc:  # a stale press: nothing to answer any more
            log.info("callback_answer_failed", reason=str(exc))

    def open_file(self, document: Document) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a doc from its URL, within the download limit (see ``vk_files.open_doc``)."""
        return vk_files.open_doc(self._api.session(), document, self._download_limit)

    async def _call(self, request: Callable[[], Awaitable[T]], method: str, *, quiet: bool = False) -> T:
        """Call VK, waiting out errors 6 and 9 and retrying network trouble, boundedly.

        VK names no wait for its rate (6) and flood (9) errors, so the backoff's jittered growth is
        the wait, ``send_attempts`` in all. ``quiet``: retries are logged at debug level (at start,
        the caller reports the failure in one line).
        """
        attempt = 0
        while True:
            try:
                return await request()
            except (RetryAfter, TransientError) as exc:
                attempt += 1
                if attempt >= self._backoff.send_attempts:
                    raise
                delay = self._backoff.delay_s(attempt - 1, random.random())  # noqa: S311 (jitter)
                (log.debug if quiet else log.warning)(
                    "vk_retry", method=method, attempt=attempt, delay_s=round(delay, 2), error=str(exc)
                )
                await asyncio.sleep(delay)


def _events_of(update: dict[str, Any]) -> tuple[Event, ...]:
    """The update's events; one VK sent malformed is logged and skipped, never the poller's end."""
    try:
        return vk_events.to_events(update)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("vk_update_unreadable", type=update.get("type"), error=f"{type(exc).__name__}: {exc}")
        return ()


def _version(text: str) -> tuple[int, ...]:
    """``"5.199"`` as ``(5, 199)``; an unreadable version as ``()``, older than any."""
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()

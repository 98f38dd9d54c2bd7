"""A fake Telegram Bot API server over real HTTP (aiohttp.web) for tests.

Point aiogram at it with ``AiohttpSession(api=TelegramAPIServer.from_base(base_url))``. It records
every call, long-polls getUpdates for real, serves file downloads and injects faults on demand.
"""

# The wait_* helpers take ``timeout=`` so that a failed wait can name the limit in its message.
# ruff: noqa: ASYNC109

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .telegram_files import DownloadFaults, FakeFile, FileRoutes
from .telegram_messages import MessageMethods
from .updates import BOT_ID, BOT_USERNAME, bot_user
from .wire import ApiError, Call, Fault, Json, LoopbackServer, Signal, error_body, read_params

__all__ = ["TOKEN", "Call", "DownloadFaults", "FakeFile", "FakeTelegram"]

TOKEN = f"{BOT_ID}:AAFakeTokenForTestsOnly-abcdefghijkl"
DEFAULT_WAIT_S = 60.0  # a deadline for the wait_* helpers: it bounds a hang on a busy machine
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
_TRUE_METHODS = (
    "setMyCommands answerCallbackQuery sendChatAction deleteMessage setMyDescription setMyShortDescription "
    "close logOut"
)
_SIMPLE_RESULTS: dict[str, Any] = dict.fromkeys(_TRUE_METHODS.lower().split(), True) | {"getmycommands": []}


class FakeTelegram(FileRoutes, MessageMethods, LoopbackServer):
    """An in-process Bot API server: records calls, long-polls for real, serves and breaks files."""

    def __init__(
        self, token: str = TOKEN, *, bot_id: int | None = None, bot_username: str = BOT_USERNAME
    ) -> None:
        self.token = token
        self.bot_user = bot_user(int(token.split(":")[0]) if bot_id is None else bot_id, bot_username)
        self.calls: list[Call] = []
        self.blocked_chats: set[int] = set()
        self.missing_chats: set[int] = set()
        self.results: dict[str, Any] = dict(_SIMPLE_RESULTS)
        self.confirmed_offset = 0
        self.max_concurrent_polls_seen = 0
        self.files: dict[str, FakeFile] = {}
        self._updates: list[Json] = []
        self._next_update_id = 1000
        self._next_message_id = 1
        self._texts: dict[tuple[int, int], tuple[str, Any]] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._redirecting: set[str] = set()
        self._polls_in_flight = 0
        self._signal = Signal()

    # -- lifecycle -----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        """The Bot API methods and file downloads."""
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)

    # -- test controls -------------------------------------------------------------------------

    def add_update(self, update: Json) -> int:
        """Queue one update (assigning ``update_id`` if missing), wake the poll, return the id."""
        return self.add_updates([update])[0]

    def add_updates(self, updates: Iterable[Json]) -> list[int]:
        """Queue several updates at once, so that one poll sees them all; return their ids."""
        ids = []
        for update in updates:
            stored = {"update_id": self._next_update_id, **update}
            self._next_update_id = max(self._next_update_id, stored["update_id"]) + 1
            self._updates.append(stored)
            ids.append(stored["update_id"])
        self._signal.fire()
        return ids

    @property
    def polls_in_flight(self) -> int:
        """getUpdates requests being answered right now (more than 1 only while one gets its 409)."""
        return self._polls_in_flight

    @property
    def pending_update_ids(self) -> list[int]:
        """Ids of the updates not confirmed yet."""
        return [u["update_id"] for u in self._updates]

    def fail(
        self,
        method: str,
        *,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
        html: bool = False,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (None: all, until cleared) with an error.

        ``html=True`` answers with an HTML page instead of JSON, like a proxy in front of the API.
        """
        if description is None:
            description = HTTPStatus(status).phrase
            if retry_after is not None:
                description = f"Too Many Requests: retry after {retry_after}"
        fault = Fault(status, description, retry_after, html, times)
        self._faults.setdefault(method.lower(), []).append(fault)

    def redirect_loop(self, method: str) -> None:
        """Answer every call of ``method`` with a 302 to itself, like a misconfigured reverse proxy
        (the client gives up with aiohttp's TooManyRedirects, whose text holds the URL and token)."""
        self._redirecting.add(method.lower())

    def clear_faults(self, method: str | None = None) -> None:
        """Drop the queued faults (and redirect loops) of ``method``, or of every method."""
        if method is None:
            self._faults.clear()
            self._redirecting.clear()
        else:
            self._faults.pop(method.lower(), None)
            self._redirecting.discard(method.lower())

    def set_result(self, method: str, result: Any) -> None:
        """Answer ``method`` (one without a built-in handler) with ``result``."""
        self.results[method.lower()] = result

    # -- assertions ----------------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        """Every recorded call of ``method``, in order."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def sent(self, chat_id: int, *, include_failed: bool = False) -> list[str]:
        """Texts of the sendMessage calls to ``chat_id`` (only successful ones unless asked)."""
        return [
            str(c.params.get("text", ""))
            for c in self.calls_of("sendMessage")
            if str(c.params.get("chat_id")) == str(chat_id) and (c.ok or include_failed)
        ]

    def chat_view(self, chat_id: int) -> list[str]:
        """Current texts (after edits) of the bot's messages in ``chat_id``, oldest first."""
        return [text for (cid, _), (text, _) in self._texts.items() if cid == chat_id]

    async def wait_for_text(
        self, chat_id: int, marker: str, *, timeout: float = DEFAULT_WAIT_S, count: int = 1
    ) -> list[str]:
        """Wait until ``count`` texts sent to ``chat_id`` contain ``marker``; return its texts."""
        await self._wait(
            lambda: sum(marker in text for text in self.sent(chat_id)) >= count,
            timeout,
            lambda: (
                f"{count} message(s) with {marker!r} to chat {chat_id}; sent there: {self.sent(chat_id)!r}"
            ),
        )
        return self.sent(chat_id)

    async def wait_for_call(
        self, predicate: Callable[[Call], bool], *, timeout: float = DEFAULT_WAIT_S, since: int = 0
    ) -> Call:
        """Wait for the first call from index ``since`` on that satisfies ``predicate``."""
        await self._wait(lambda: any(map(predicate, self.calls[since:])), timeout, lambda: "matching call")
        return next(c for c in self.calls[since:] if predicate(c))

    async def wait_confirmed(self, offset: int, *, timeout: float = DEFAULT_WAIT_S) -> None:
        """Wait until a getUpdates call has passed an offset of at least ``offset``."""
        await self._wait(
            lambda: self.confirmed_offset >= offset, timeout, lambda: f"offset {offset} confirmed"
        )

    async def wait_download_started(
        self, file_id: str, *, count: int = 1, timeout: float = DEFAULT_WAIT_S
    ) -> None:
        """Wait until the download of ``file_id`` has been requested ``count`` times."""
        file = self.files[file_id]
        await self._wait(
            lambda: file.downloads_started >= count, timeout, lambda: f"{count} download(s) of {file_id}"
        )

    async def wait_polls_idle(self, *, timeout: float = DEFAULT_WAIT_S) -> None:
        """Wait until no getUpdates is in flight (e.g. after a stopped bot dropped its long poll)."""
        await self._wait(lambda: self.polls_in_flight == 0, timeout, lambda: "idle getUpdates slot")

    async def wait_until(
        self, predicate: Callable[[], bool], what: str, *, timeout: float = DEFAULT_WAIT_S
    ) -> None:
        """Wait until ``predicate()`` holds, checked whenever the fake sees a call or a download."""
        await self._wait(predicate, timeout, lambda: what)

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
        """Wait for ``predicate``; on timeout fail naming ``what()`` and every call seen so far."""
        if not await self._signal.wait_until(predicate, timeout):
            calls = ", ".join(call.describe() for call in self.calls)
            raise AssertionError(f"timed out after {timeout}s waiting for {what()}; calls: {calls}")

    # -- HTTP ----------------------------------------------------------------------------------

    def _record(self, method: str, params: dict[str, Any], status: int, content_type: str) -> None:
        """Record a call and wake everyone waiting on the fake."""
        self.calls.append(Call(method, params, time.monotonic(), int(status), content_type))
        self._signal.fire()

    def _take_fault(self, method: str) -> Fault | None:
        """The next queued fault for ``method``, used up by this call."""
        queue = self._faults.get(method.lower(), [])
        if not queue:
            return None
        fault = queue[0]
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
        return fault

    async def _api(self, request: web.Request) -> web.StreamResponse:
        """Route ``/bot{token}/{method}``."""
        method = request.match_info["method"]
        if method.lower() in self._redirecting:  # the redirected GETs keep the headers, not the body
            self._record(method, dict(request.query), HTTPStatus.FOUND, request.content_type)
            return web.Response(status=HTTPStatus.FOUND, headers={"Location": str(request.rel_url)})
        params = await read_params(request)
        content_type = request.content_type
        if request.match_info["token"] != self.token:
            self._record(method, params, HTTPStatus.UNAUTHORIZED, content_type)
            return web.json_response(error_body(401, "Unauthorized"), status=401)
        if (fault := self._take_fault(method)) is not None:
            self._record(method, params, fault.status, content_type)
            if fault.html:
                page = f"<html><body><h1>{fault.status} {fault.description}</h1></body></html>"
                return web.Response(status=fault.status, text=page, content_type="text/html")
            body = error_body(fault.status, fault.description, fault.retry_after)
            return web.json_response(body, status=fault.status)
        if method.lower() == "getupdates":
            return await self._get_updates(method, params, content_type)
        try:
            result = self._dispatch(method.lower(), params)
        except ApiError as exc:
            self._record(method, params, exc.status, content_type)
            return web.json_response(error_body(exc.status, exc.description), status=exc.status)
        self._record(method, params, HTTPStatus.OK, content_type)
        return web.json_response({"ok": True, "result": result})

    def _dispatch(self, name: str, params: dict[str, Any]) -> Any:
        """The result of a non-polling method, or ``ApiError``."""
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getme": lambda _: self.bot_user,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "getfile": self._get_file,
            "deletewebhook": self._delete_webhook,
        }
        try:
            return handlers[name](params) if name in handlers else self._canned(name)
        except (ValueError, TypeError) as exc:  # a malformed parameter
            raise ApiError(400, f"Bad Request: {exc}") from exc

    def _canned(self, name: str) -> Any:
        """The fixed result of a method without a handler, or 404 like Telegram."""
        if name in self.results:
            return self.results[name]
        raise ApiError(HTTPStatus.NOT_FOUND, "Not Found")

    async def _get_updates(self, method: str, params: dict[str, Any], content_type: str) -> web.Response:
        """A real long poll: answer at once if updates are pending, else wait up to ``timeout``."""
        self._polls_in_flight += 1
        self.max_concurrent_polls_seen = max(self.max_concurrent_polls_seen, self._polls_in_flight)
        try:
            if self._polls_in_flight > 1:
                self._record(method, params, HTTPStatus.CONFLICT, content_type)
                return web.json_response(error_body(409, CONFLICT), status=409)
            self._confirm(int(params.get("offset", 0)))
            self._record(method, params, HTTPStatus.OK, content_type)
            limit = min(max(int(params.get("limit", 100)), 1), 100)
            await self._signal.wait_until(lambda: bool(self._updates), float(params.get("timeout", 0)))
            return web.json_response({"ok": True, "result": self._updates[:limit]})
        finally:
            self._polls_in_flight -= 1
            self._signal.fire()

    def _confirm(self, offset: int) -> None:
        """Drop the updates below ``offset`` for good."""
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        """deleteWebhook; ``drop_pending_updates=true`` really drops them, as Telegram does."""
        if params.get("drop_pending_updates") == "true":
            self._updates.clear()
        return True

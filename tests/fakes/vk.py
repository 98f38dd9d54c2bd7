"""A fake VK API and Bots Long Poll server over real HTTP (aiohttp.web) for tests.

Methods live at ``{base_url}/method/{name}`` (``api_url``), answering ``{"response": …}`` or
``{"error": {"error_code", "error_msg"}}`` with HTTP 200 as VK does; the long-poll server at
``{base_url}/lp`` waits for real; docs download from ``{base_url}/doc/…``. Tests act as users
(``send_message``, ``press_button``), inject errors and ``failed`` answers, and wait for what the
bot sent (``wait_for_text``), never sleeping.
"""

# The wait_* helpers take ``timeout=`` so that a failed wait can name the limit in its message.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

from .telegram import DownloadFaults
from .wire import Call, Json, Signal, read_params

__all__ = ["GROUP_ID", "TOKEN", "Call", "FakeVk", "VkDoc", "VkMessage"]

TOKEN = "vk1.a.FakeCommunityTokenForTestsOnly_abcdefghijklmnopqrstuvwxyz0123456789"
GROUP_ID = 229_000_001
DEFAULT_WAIT_S = 60.0  # a deadline for the wait_* helpers: it bounds a hang on a busy machine
FIRST_TS = 1000
ERROR_TEXTS = {
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied: no access to call this method",
    100: "One of the parameters specified was missing or invalid",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    911: "Keyboard format is invalid",
}


@dataclass
class VkDoc:
    """A doc registered with ``add_doc`` and how often it was downloaded."""

    owner_id: int
    doc_id: int
    content: bytes
    attachment: Json
    faults: DownloadFaults
    downloads_started: int = 0
    downloads_completed: int = 0


@dataclass
class VkMessage:
    """A message the bot sent (one per distinct ``random_id``), with its current text after edits."""

    peer_id: int
    conversation_message_id: int
    message_id: int
    random_id: int
    text: str
    keyboard: Json | None
    reply_to: int | None
    edits: list[str] = field(default_factory=list)


class FakeVk:
    """An in-process VK API: records calls, long-polls for real, serves and breaks docs."""

    def __init__(self, token: str = TOKEN, group_id: int = GROUP_ID) -> None:
        self.token = token
        self.group_id = group_id
        self.token_group_id = group_id  # the community the token belongs to
        self.long_poll_enabled = True
        self.long_poll_events = {"message_new": 1, "message_event": 1, "message_reply": 0}
        self.long_poll_version = "5.199"
        self.blocked_peers: set[int] = set()  # 901
        self.private_peers: set[int] = set()  # 902
        self.calls: list[Call] = []
        self.token_in_query: list[str] = []  # paths whose query carried access_token (never expected)
        self.messages: list[VkMessage] = []
        self.docs: dict[str, VkDoc] = {}
        self.polls: list[dict[str, str]] = []  # every a_check's query (act, key, ts, wait), in order
        self.polls_in_flight = 0
        self._events: list[Json] = []  # event number i is FIRST_TS + i
        self.history_start = FIRST_TS  # a poll from an older ts gets failed 1
        self._key = secrets.token_hex(8)
        self._poll_faults: list[int] = []
        self._faults: dict[str, list[list[int]]] = {}  # method → [[code, times left]]
        self._by_random_id: dict[int, VkMessage] = {}
        self._cmids: dict[int, itertools.count[int]] = {}
        self._message_ids = itertools.count(1)
        self._doc_ids = itertools.count(700_001)
        self._signal = Signal()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """What ``TGS3BOT_VK_API_URL`` is set to."""
        return f"{self.base_url}/method"

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1 and return the base URL."""
        app = web.Application()
        app.router.add_post("/method/{method}", self._api)
        app.router.add_get("/lp", self._long_poll)
        app.router.add_get("/doc/{doc}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening; open long polls and downloads are cut off."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- users ---------------------------------------------------------------------------------

    @property
    def ts(self) -> int:
        """The ts of the next event (what getLongPollServer answers)."""
        return FIRST_TS + len(self._events)

    def add_event(self, kind: str, obj: Json) -> Json:
        """Queue a long-poll event (with a fresh ``event_id``), wake the polls, return it."""
        event = {"group_id": self.group_id, "type": kind, "event_id": secrets.token_hex(20), "v": "5.199"}
        event["object"] = obj
        self._events.append(event)
        self._signal.fire()
        return event

    def next_cmid(self, peer_id: int) -> int:
        """The next conversation_message_id in the peer's dialog (users' and the bot's messages share it)."""
        return next(self._cmids.setdefault(peer_id, itertools.count(1)))

    def send_message(
        self, user_id: int, text: str = "", *, attachments: Sequence[Json] = (), peer_id: int | None = None
    ) -> Json:
        """A user writes to the community (``peer_id``: a group chat); return the message dict."""
        peer = user_id if peer_id is None else peer_id
        message = {
            "date": int(time.time()),
            "from_id": user_id,
            "id": next(self._message_ids) if peer < 2_000_000_000 else 0,
            "peer_id": peer,
            "text": text,
            "conversation_message_id": self.next_cmid(peer),
            "attachments": list(attachments),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "out": 0,
        }
        client_info = {"button_actions": ["text", "callback"], "keyboard": True, "inline_keyboard": True}
        self.add_event("message_new", {"message": message, "client_info": client_info})
        return message

    def press_button(self, user_id: int, data: str | None, cmid: int, *, peer_id: int | None = None) -> str:
        """A user presses a callback button whose data is ``data`` under message ``cmid``; its event_id."""
        event_id = secrets.token_hex(6)
        payload = {"d": data} if data is not None else {"x": 1}
        obj = {"user_id": user_id, "peer_id": user_id if peer_id is None else peer_id, "event_id": event_id}
        self.add_event("message_event", obj | {"payload": payload, "conversation_message_id": cmid})
        return event_id

    def add_doc(
        self,
        content: bytes,
        *,
        title: str = "file.bin",
        ext: str | None = None,
        size: int | Literal["auto"] = "auto",
        owner_id: int = 1,
        **faults: Any,
    ) -> Json:
        """Register a doc and return its attachment (``{"type": "doc", "doc": …}``).

        ``faults``: ``DownloadFaults`` fields (``truncate_at``, ``hold``, ``status``, ``bytes_per_s``…).
        """
        doc_id = next(self._doc_ids)
        name = f"{owner_id}_{doc_id}"
        doc = {
            "id": doc_id,
            "owner_id": owner_id,
            "title": title,
            "size": len(content) if size == "auto" else size,
            "ext": ext if ext is not None else title.rpartition(".")[2] if "." in title else "",
            "date": int(time.time()),
            "type": 8,
            "url": f"{self.base_url}/doc/{name}?hash={secrets.token_hex(8)}&dl=1&api=1&no_preview=1",
        }
        attachment = {"type": "doc", "doc": doc}
        self.docs[name] = VkDoc(owner_id, doc_id, content, attachment, DownloadFaults(**faults))
        return attachment

    # -- faults --------------------------------------------------------------------------------

    def fail(self, method: str, code: int, *, times: int | None = 1) -> None:
        """Answer the next ``times`` calls of ``method`` (None: all) with VK error ``code``."""
        self._faults.setdefault(method, []).append([code, -1 if times is None else times])

    def clear_faults(self) -> None:
        """Drop every queued error."""
        self._faults.clear()

    def fail_poll(self, failed: Literal[1, 2, 3]) -> None:
        """Answer the next a_check with ``failed``: 1 history lost (new ts), 2 key expired, 3 both."""
        self._poll_faults.append(failed)
        self._signal.fire()

    def expire_key(self) -> None:
        """The long-poll key expires: polls with it get ``failed: 2``."""
        self._key = secrets.token_hex(8)

    # -- what the bot sent ---------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        """Every recorded call of ``method``, in order (``status``: 200, or the VK error code)."""
        return [c for c in self.calls if c.method == method]

    def texts(self, peer_id: int) -> list[str]:
        """What the bot sent to ``peer_id`` (first texts, not edits), one per message kept."""
        return [m.text for m in self.messages if m.peer_id == peer_id]

    def chat_view(self, peer_id: int) -> list[str]:
        """The current texts (after edits) of the bot's messages to ``peer_id``."""
        return [m.edits[-1] if m.edits else m.text for m in self.messages if m.peer_id == peer_id]

    def message(self, peer_id: int, cmid: int) -> VkMessage:
        """The bot's message ``cmid`` in ``peer_id``."""
        return next(m for m in self.messages if (m.peer_id, m.conversation_message_id) == (peer_id, cmid))

    async def wait_for_text(
        self, peer_id: int, marker: str, *, count: int = 1, timeout: float = DEFAULT_WAIT_S
    ) -> list[str]:
        """Wait until ``count`` messages to ``peer_id`` contain ``marker``; return the peer's texts."""
        await self.wait_until(
            lambda: sum(marker in t for t in self.texts(peer_id)) >= count,
            f"{count} message(s) with {marker!r} to {peer_id}",
            timeout=timeout,
        )
        return self.texts(peer_id)

    async def wait_for_call(
        self, predicate: Callable[[Call], bool], *, since: int = 0, timeout: float = DEFAULT_WAIT_S
    ) -> Call:
        """Wait for the first call from index ``since`` on that satisfies ``predicate``."""
        await self.wait_until(
            lambda: any(map(predicate, self.calls[since:])), "a matching call", timeout=timeout
        )
        return next(c for c in self.calls[since:] if predicate(c))

    async def wait_for_polls(self, count: int, *, timeout: float = DEFAULT_WAIT_S) -> None:
        """Wait until ``count`` a_check requests have arrived."""
        await self.wait_until(lambda: len(self.polls) >= count, f"{count} long poll(s)", timeout=timeout)

    async def wait_until(
        self, predicate: Callable[[], bool], what: str, *, timeout: float = DEFAULT_WAIT_S
    ) -> None:
        """Wait until ``predicate()`` holds, checked whenever the fake sees a request."""
        if not await self._signal.wait_until(predicate, timeout):
            seen = ", ".join(f"{c.method}[{c.status}]" for c in self.calls)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; calls: {seen}")

    # -- HTTP: methods -------------------------------------------------------------------------

    def _record(self, method: str, params: dict[str, Any], status: int) -> None:
        self.calls.append(Call(method, params, time.monotonic(), status))
        self._signal.fire()

    def _take_fault(self, method: str) -> int | None:
        queue = self._faults.get(method, [])
        if not queue:
            return None
        code, left = queue[0]
        if left > 0:
            queue[0][1] = left - 1
            if left == 1:
                queue.pop(0)
        return code

    async def _api(self, request: web.Request) -> web.Response:
        """Route ``/method/{method}``: check the token, inject faults, dispatch."""
        method = request.match_info["method"]
        if "access_token" in request.query:
            self.token_in_query.append(request.path)
        params = await read_params(request)
        token = params.pop("access_token", None)
        code = 5 if token != self.token else self._take_fault(method)
        if code is None:
            try:
                result = self._dispatch(method, params)
            except _VkError as exc:
                code = exc.code
            else:
                self._record(method, params, 200)
                return web.json_response({"response": result})
        self._record(method, params, code)
        error = {"error_code": code, "error_msg": ERROR_TEXTS.get(code, "Unknown error occurred")}
        error["request_params"] = [{"key": "method", "value": method}, {"key": "v", "value": "5.199"}]
        return web.json_response({"error": error})

    def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "groups.getById": self._get_by_id,
            "groups.getLongPollSettings": self._long_poll_settings,
            "groups.getLongPollServer": self._long_poll_server,
            "messages.send": self._send,
            "messages.edit": self._edit,
            "messages.sendMessageEventAnswer": lambda p: 1,
        }
        if method not in handlers:
            raise _VkError(3)  # "Unknown method passed"
        try:
            return handlers[method](params)
        except (KeyError, ValueError, TypeError):
            raise _VkError(100) from None

    def _get_by_id(self, params: dict[str, Any]) -> Json:
        group_id = int(params.get("group_id") or params.get("group_ids") or self.token_group_id)
        group = {"id": group_id, "name": f"Community {group_id}", "screen_name": f"club{group_id}"}
        return {"groups": [group | {"type": "group", "is_closed": 0}], "profiles": []}

    def _own_group(self, params: dict[str, Any]) -> None:
        if int(params["group_id"]) != self.token_group_id:
            raise _VkError(15)

    def _long_poll_settings(self, params: dict[str, Any]) -> Json:
        self._own_group(params)
        return {
            "is_enabled": self.long_poll_enabled,
            "api_version": self.long_poll_version,
            "events": self.long_poll_events,
        }

    def _long_poll_server(self, params: dict[str, Any]) -> Json:
        self._own_group(params)
        if not self.long_poll_enabled:
            raise _VkError(100)
        return {"key": self._key, "server": f"{self.base_url}/lp", "ts": str(self.ts)}

    def _send(self, params: dict[str, Any]) -> Any:
        random_id = int(params["random_id"])
        peer_id = int(params.get("peer_ids") or params["peer_id"])
        if random_id != 0 and random_id in self._by_random_id:  # VK keeps one message per random_id
            return self._sent_answer(self._by_random_id[random_id], params)
        text = str(params.get("message", ""))
        if not text.strip():
            raise _VkError(100)
        if peer_id in self.blocked_peers or peer_id in self.private_peers:
            raise _VkError(901 if peer_id in self.blocked_peers else 902)
        keyboard = _checked_keyboard(params.get("keyboard"))
        forward = params.get("forward")
        reply_to = forward["conversation_message_ids"][0] if isinstance(forward, dict) else None
        message = VkMessage(
            peer_id, self.next_cmid(peer_id), next(self._message_ids), random_id, text, keyboard, reply_to
        )
        self.messages.append(message)
        if random_id != 0:
            self._by_random_id[random_id] = message
        return self._sent_answer(message, params)

    @staticmethod
    def _sent_answer(message: VkMessage, params: dict[str, Any]) -> Any:
        if "peer_ids" not in params:
            return message.message_id
        ids = {"message_id": message.message_id, "conversation_message_id": message.conversation_message_id}
        return [{"peer_id": message.peer_id} | ids]

    def _edit(self, params: dict[str, Any]) -> int:
        peer_id, cmid = int(params["peer_id"]), int(params["conversation_message_id"])
        try:
            message = self.message(peer_id, cmid)
        except StopIteration:
            raise _VkError(100) from None
        message.edits.append(str(params["message"]))
        if "keyboard" in params:
            message.keyboard = _checked_keyboard(params["keyboard"])
        return 1

    # -- HTTP: long poll and downloads ---------------------------------------------------------

    async def _long_poll(self, request: web.Request) -> web.Response:
        """``a_check``: events from ``ts`` on, waiting up to ``wait`` seconds for the first."""
        query = request.query
        ts, wait = int(query["ts"]), min(float(query.get("wait", 25)), 90)
        self.polls.append(dict(query))
        self.polls_in_flight += 1
        self._signal.fire()
        try:
            if self._poll_faults:
                return web.json_response(self._failed(self._poll_faults.pop(0)))
            if query.get("key") != self._key:
                return web.json_response({"failed": 2})
            if ts < self.history_start:
                return web.json_response({"failed": 1, "ts": str(self.ts)})
            await self._signal.wait_until(lambda: self.ts > ts or bool(self._poll_faults), wait)
            if self._poll_faults:
                return web.json_response(self._failed(self._poll_faults.pop(0)))
            events = self._events[max(ts - FIRST_TS, 0) :]
            return web.json_response({"ts": str(max(self.ts, ts)), "updates": events})
        finally:
            self.polls_in_flight -= 1
            self._signal.fire()

    def _failed(self, failed: int) -> Json:
        if failed in (2, 3):
            self.expire_key()
        return {"failed": failed, "ts": str(self.ts)} if failed == 1 else {"failed": failed}

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """Stream a doc's bytes, misbehaving as configured."""
        doc = self.docs.get(request.match_info["doc"])
        if doc is None or "hash" not in request.query:
            return web.Response(status=404, text="<html>404 Not Found</html>", content_type="text/html")
        doc.downloads_started += 1
        self._signal.fire()
        faults = doc.faults
        if faults.status is not None:
            return web.Response(status=faults.status, text="<html>Error</html>", content_type="text/html")
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(doc.content)
        await response.prepare(request)
        data = doc.content[: faults.truncate_at]
        for start in range(0, len(data), faults.chunk_size):
            await response.write(data[start : start + faults.chunk_size])
            if start == 0 and faults.hold is not None:
                await faults.hold.wait()
            delay = faults.delay_s_per_chunk + (
                faults.chunk_size / faults.bytes_per_s if faults.bytes_per_s else 0
            )
            if delay > 0:
                await asyncio.sleep(delay)
        if faults.truncate_at is not None and faults.truncate_at < len(doc.content):
            assert request.transport is not None
            request.transport.close()  # the client sees fewer bytes than Content-Length
            return response
        await response.write_eof()
        doc.downloads_completed += 1
        self._signal.fire()
        return response


class _VkError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _checked_keyboard(value: Any) -> Json | None:
    """A keyboard parameter, checked against VK's inline limits (error 911 otherwise)."""
    if value is None:
        return None
    keyboard = value if isinstance(value, dict) else json.loads(value)
    rows = keyboard.get("buttons", [])
    buttons = [b for row in rows for b in row]
    if not keyboard.get("inline") or len(rows) > 6 or len(buttons) > 10 or any(len(r) > 5 for r in rows):
        raise _VkError(911)
    for button in buttons:
        action = button["action"]
        if action["type"] != "callback" or len(action["label"]) > 40 or len(action["payload"]) > 255:
            raise _VkError(911)
    return dict(keyboard)

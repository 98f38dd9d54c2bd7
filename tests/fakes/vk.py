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
import time
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web

from .vk_community import ERROR_TEXTS, GROUP_ID, TOKEN, VkCommunity, VkDoc, VkError, VkMessage
from .wire import Call, Json, LoopbackServer, end_download, read_params

__all__ = ["GROUP_ID", "TOKEN", "Call", "FakeVk", "VkDoc", "VkMessage"]

DEFAULT_WAIT_S = 60.0  # a deadline for the wait_* helpers: it bounds a hang on a busy machine


class FakeVk(VkCommunity, LoopbackServer):
    """An in-process VK API: records calls, long-polls for real, serves and breaks docs."""

    def __init__(self, token: str = TOKEN, group_id: int = GROUP_ID) -> None:
        super().__init__(token, group_id)
        self.token_in_query: list[str] = []  # paths whose query carried access_token (never expected)
        self.polls: list[dict[str, str]] = []  # every a_check's query (act, key, ts, wait), in order
        self.polls_in_flight = 0
        self._poll_faults: list[int] = []
        self._faults: dict[str, list[list[int]]] = {}  # method → [[code, times left]]

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """What ``TGS3BOT_VK_API_URL`` is set to."""
        return f"{self.base_url}/method"

    def routes(self, app: web.Application) -> None:
        """The API methods, the long-poll server and doc downloads."""
        app.router.add_post("/method/{method}", self._api)
        app.router.add_get("/lp", self._long_poll)
        app.router.add_get("/doc/{doc}", self._download)

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

    # -- waiting --------------------------------------------------------------------------------

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
            except VkError as exc:
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
            raise VkError(3)  # "Unknown method passed"
        try:
            return handlers[method](params)
        except (KeyError, ValueError, TypeError):
            raise VkError(100) from None

    def _get_by_id(self, params: dict[str, Any]) -> Json:
        group_id = int(params.get("group_id") or params.get("group_ids") or self.token_group_id)
        group = {"id": group_id, "name": f"Community {group_id}", "screen_name": f"club{group_id}"}
        return {"groups": [group | {"type": "group", "is_closed": 0}], "profiles": []}

    def _own_group(self, params: dict[str, Any]) -> None:
        if int(params["group_id"]) != self.token_group_id:
            raise VkError(15)

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
            raise VkError(100)
        return {"key": self._key, "server": f"{self.base_url}/lp", "ts": str(self.ts)}

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
            return web.json_response({"ts": str(max(self.ts, ts)), "updates": self.events_from(ts)})
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
        if await end_download(request, response, len(doc.content), faults.truncate_at):
            doc.downloads_completed += 1
            self._signal.fire()
        return response

"""Bot API wire-level pieces of the fake server: call records, error bodies, request parsing.

Also ``Signal``, the broadcast wake-up every wait of the fake is built on, and ``LoopbackServer``,
the HTTP lifecycle the fake servers share.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

from aiohttp import web

Json = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One Bot API request: method, decoded params, arrival time, HTTP status, Content-Type sent."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    content_type: str = ""

    @property
    def ok(self) -> bool:
        """Whether the fake answered ``{"ok": true}``."""
        return self.status == HTTPStatus.OK

    def describe(self) -> str:
        """A short form for failure messages, e.g. ``sendMessage[200](42: 'Saved')``."""
        text = f"({self.params.get('chat_id')}: {self.params['text']!r})" if "text" in self.params else ""
        return f"{self.method}[{self.status}]{text}"


@dataclass
class Fault:
    """A queued error answer for one method; ``times=None`` repeats it forever."""

    status: int
    description: str
    retry_after: int | None
    html: bool
    times: int | None


class ApiError(Exception):
    """Raised by a method handler to answer ``{"ok": false, ...}`` with ``status``."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class Signal:
    """A broadcast "something changed" signal that synchronous code can fire."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        """Wake every waiter so it re-checks its predicate."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], limit_s: float | None) -> bool:
        """Wait until ``predicate()`` holds; False if ``limit_s`` seconds pass first."""
        try:
            async with asyncio.timeout(limit_s):
                while not predicate():
                    await self._event.wait()
        except TimeoutError:
            return predicate()
        return True


def error_body(status: int, description: str, retry_after: int | None = None) -> Json:
    """A Bot API error body."""
    body: Json = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


def _decode(value: Any) -> Any:
    """A form value as the test wants it: JSON objects and arrays decoded, bytes for files."""
    if isinstance(value, web.FileField):
        return value.file.read()
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_form_text(value: Any) -> Any:
    return value if isinstance(value, str | dict | list) else json.dumps(value)


async def read_params(request: web.Request) -> dict[str, Any]:
    """Query, urlencoded, multipart or JSON parameters of a request, the same whatever the encoding."""
    raw: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        # As a form would carry them: scalars as their text ("8", "true"), objects decoded below.
        body = await request.json()
        raw |= {key: _as_form_text(value) for key, value in body.items()}
    elif request.can_read_body:
        raw |= dict((await request.post()).items())
    return {key: _decode(value) for key, value in raw.items()}


class LoopbackServer:
    """An aiohttp app on a free port of 127.0.0.1: the fakes' start, stop and ``async with``.

    Subclasses add their routes in ``routes``. ``handler_cancellation``: a client that drops its
    long poll frees the poll slot at once.
    """

    _runner: web.AppRunner | None = None
    base_url = ""

    def routes(self, app: web.Application) -> None:
        """Add the fake's routes to ``app``."""
        raise NotImplementedError

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1 and return the base URL ``http://127.0.0.1:PORT``."""
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
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


async def end_download(
    request: web.Request, response: web.StreamResponse, size: int, truncate_at: int | None
) -> bool:
    """End a download of ``size`` bytes whose body was written up to ``truncate_at``: cut the
    connection if that is short of the end (the client sees fewer bytes than Content-Length), else
    finish the body. True when the download was completed."""
    if truncate_at is not None and truncate_at < size:
        assert request.transport is not None
        request.transport.close()
        return False
    await response.write_eof()
    return True

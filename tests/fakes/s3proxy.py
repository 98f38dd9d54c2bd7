"""An HTTP reverse proxy in front of moto's S3 server that can make it act like a lesser store.

It forwards every request as it came (path, query, headers, body) and every answer as it went,
with two changes a test can ask for:

- ``drop_if_none_match``: the ``If-None-Match`` header is removed on the way in, so moto never
  sees it and writes over an existing key, as an old MinIO or an S3-compatible store that ignores
  the header does. (A real S3 would then reject the signature, as the header is signed; moto does
  not check signatures.)
- ``refuse(prefix, status, code)``: requests for keys under ``prefix`` are answered with an S3
  error document instead of being forwarded, like a bucket policy that denies that prefix.

Every request is recorded (method, bucket, key, whether the header was dropped), so a test can
see which requests the bot made, such as a start-up probe, or that it made none.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

# Headers that describe one hop, not the message: the client and the server set their own.
HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "expect", "te", "upgrade"}
)


@dataclass(frozen=True, slots=True)
class ProxiedRequest:
    """One request the proxy received."""

    method: str
    bucket: str
    key: str  # "" for a bucket-level request
    if_none_match: str | None  # the header's value as the client sent it
    forwarded: bool  # False: answered by ``refuse``


class S3Proxy:
    """``async with S3Proxy(moto_endpoint) as proxy``; point the bot at ``proxy.url``."""

    def __init__(self, upstream: str, *, drop_if_none_match: bool = True) -> None:
        self.upstream = upstream.rstrip("/")
        self.drop_if_none_match = drop_if_none_match
        self.requests: list[ProxiedRequest] = []
        self.url = ""
        self._refusals: list[tuple[str, int, str]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def refuse(self, prefix: str, status: int = 403, code: str = "AccessDenied") -> None:
        """Answer every request for a key under ``prefix`` with this S3 error, from now on."""
        self._refusals.append((prefix, status, code))

    def requests_under(self, prefix: str) -> list[ProxiedRequest]:
        """The recorded requests for keys under ``prefix``."""
        return [r for r in self.requests if r.key.startswith(prefix)]

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type")
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        bucket, _, key = unquote(urlsplit(request.raw_path).path).lstrip("/").partition("/")
        seen = request.headers.get("If-None-Match")
        refusal = next((r for r in self._refusals if key and key.startswith(r[0])), None)
        self.requests.append(ProxiedRequest(request.method, bucket, key, seen, forwarded=refusal is None))
        body = await request.read()
        if refusal is not None:
            return _s3_error(refusal[1], refusal[2], request.method)
        dropped = HOP_HEADERS | ({"if-none-match"} if self.drop_if_none_match else set())
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in dropped]
        async with self._session.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as answer:
            payload = await answer.read()
            out = [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS]
            response = web.StreamResponse(status=answer.status, headers=out)
            # A HEAD answer has no body but tells the object's size, which the client reads.
            response.content_length = int(answer.headers.get("Content-Length", len(payload)))
            await response.prepare(request)
            if request.method != "HEAD":
                await response.write(payload)
            await response.write_eof()
            return response


def _s3_error(status: int, code: str, method: str) -> web.Response:
    """An S3 error answer (an XML document; a HEAD answer has only the status)."""
    body = None if method == "HEAD" else f"<Error><Code>{code}</Code><Message>{code}</Message></Error>"
    return web.Response(status=status, text=body, content_type="application/xml")

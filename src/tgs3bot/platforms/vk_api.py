"""A thin typed client of the VK API: aiohttp, and pydantic models of the few answers the bot reads.

Why not vkbottle's ``API``: the bot uses six methods and the long-poll check; a client this size
keeps the token where it belongs (the POST body, never a URL), maps VK's errors straight onto the
bot's own (``errors``) and adds no dependency beyond aiohttp and pydantic, which the bot has.

Every method goes as ``POST {api_url}/{method}`` with a form body carrying ``access_token`` and
``v``; VK answers HTTP 200 with ``{"response": …}`` or ``{"error": {"error_code", "error_msg"}}``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, TypeVar

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tgs3bot.errors import PlatformError, RetryAfter, TransientError, Unauthorized, Undeliverable

API_VERSION = "5.199"
DEFAULT_API_URL = "https://api.vk.com/method"
REQUEST_TIMEOUT_S = 30.0
# The long poll itself lasts ``wait`` seconds; the HTTP request must outlive it.
POLL_REQUEST_MARGIN_S = 15.0
# VK gives no retry-after; its limits are per second (error 6: 20 calls a second for a community).
RATE_LIMIT_WAIT_S = 1.0

AUTH_FAILED = 5  # "User authorization failed": a bad or revoked token
TOO_MANY_REQUESTS = 6
FLOOD_CONTROL = 9
# "Can't send messages for users without permission" (the user never wrote, or forbade messages),
# "…to this user due to their privacy settings", "You don't have access to this chat".
UNDELIVERABLE = frozenset({901, 902, 917})
SERVER_TROUBLE = frozenset({1, 10})  # "Unknown error occurred", "Internal server error"
M = TypeVar("M", bound="_Slim")


class _Slim(BaseModel):
    """A read-only view of a VK object: only the declared fields, the rest ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class Group(_Slim):
    id: int
    name: str = ""


class LongPollSettings(_Slim):
    is_enabled: bool = False
    api_version: str = ""
    events: dict[str, int] = Field(default_factory=dict)


class LongPollServer(_Slim):
    server: str
    key: str
    ts: str


class LongPollAnswer(_Slim):
    """``a_check``'s answer: events and the next ``ts``, or ``failed`` (1, 2 or 3)."""

    ts: str | None = None
    updates: list[dict[str, Any]] = Field(default_factory=list)
    failed: int | None = None


class Sent(_Slim):
    """One item of ``messages.send``'s answer with ``peer_ids``; ``error`` if that peer refused."""

    peer_id: int
    message_id: int = 0
    conversation_message_id: int = 0
    error: dict[str, Any] | None = None


def translate(code: int, message: str, method: str) -> PlatformError:
    """VK's error ``code`` as the bot's own error (the text never carries the token)."""
    text = f"VK error {code} in {method}: {message}"
    if code == AUTH_FAILED:
        return Unauthorized(text)
    if code in (TOO_MANY_REQUESTS, FLOOD_CONTROL):
        return RetryAfter(RATE_LIMIT_WAIT_S, text)
    if code in UNDELIVERABLE:
        return Undeliverable(text)
    if code in SERVER_TROUBLE:
        return TransientError(text)
    return PlatformError(text)


class RandomIds:
    """``random_id``s for ``messages.send``: unique per reply, so VK drops only a retried duplicate.

    VK takes a signed 32-bit number and drops a second message with a ``random_id`` it saw from the
    community recently. Each client starts at a random point and counts up: one process never
    repeats itself within 2**32 replies, and two processes (or a restart) collide only if their
    starting points fall within the replies sent between them, far likelier to miss than 32-bit
    draws each time.
    """

    def __init__(self, start: int | None = None) -> None:
        self._next = secrets.randbits(32) if start is None else start

    def take(self) -> int:
        """The next id, never 0 (VK reads 0 as "no id": no protection against duplicates)."""
        while True:
            value, self._next = self._next, (self._next + 1) % 2**32
            signed = value - 2**32 if value >= 2**31 else value
            if signed != 0:
                return signed


class VkApi:
    """The VK API client: one aiohttp session for the methods, the long poll and downloads."""

    def __init__(self, token: SecretStr, api_url: str = DEFAULT_API_URL) -> None:
        self._token = token
        self._api_url = api_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"VkApi({self._api_url!r})"

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session, made on first use (called from coroutines: inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def call(
        self, method: str, params: Mapping[str, object], *, timeout_s: float = REQUEST_TIMEOUT_S
    ) -> Any:
        """Call ``method``; its ``response``, or the translated error (``errors``)."""
        form = {key: _form_value(value) for key, value in params.items() if value is not None}
        form |= {"access_token": self._token.get_secret_value(), "v": API_VERSION}
        http = self.session()
        try:
            async with http.post(
                f"{self._api_url}/{method}", data=form, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"VK {method} failed: {_describe(exc)}") from None
        answer = _json_object(body)
        if answer is None:
            raise TransientError(f"VK {method} answered HTTP {status} without a JSON body")
        if isinstance(error := answer.get("error"), dict):
            raise translate(int(error.get("error_code", 0)), str(error.get("error_msg", "")), method)
        if "response" not in answer:
            raise TransientError(f"VK {method} answered HTTP {status} without a response")
        return answer["response"]

    async def own_group(self) -> Group:
        """The community the token belongs to (``groups.getById`` without ids)."""
        answer = await self.call("groups.getById", {})
        groups = answer.get("groups", []) if isinstance(answer, dict) else answer  # 5.139+: an object
        if not groups:
            raise PlatformError("VK groups.getById named no community: is it a community token?")
        return _parse(Group, groups[0], "groups.getById")

    async def long_poll_settings(self, group_id: int) -> LongPollSettings:
        """``groups.getLongPollSettings``: whether the Bots Long Poll API is on, and for which events."""
        answer = await self.call("groups.getLongPollSettings", {"group_id": group_id})
        return _parse(LongPollSettings, answer, "groups.getLongPollSettings")

    async def long_poll_server(self, group_id: int) -> LongPollServer:
        """``groups.getLongPollServer``: a fresh key, the server and its current ``ts``."""
        answer = await self.call("groups.getLongPollServer", {"group_id": group_id})
        return _parse(LongPollServer, answer, "groups.getLongPollServer")

    async def send_message(self, params: Mapping[str, object]) -> Sent:
        """``messages.send`` to one peer given as ``peer_ids`` (so VK answers its conversation id)."""
        answer = await self.call("messages.send", params)
        if not isinstance(answer, list) or not answer:
            raise TransientError("VK messages.send answered no message")
        sent = _parse(Sent, answer[0], "messages.send")
        if sent.error is not None:  # this peer refused; with one peer VK may answer so, not with an error
            error = sent.error
            raise translate(int(error.get("code", 0)), str(error.get("description", "")), "messages.send")
        return sent

    async def check(self, server: LongPollServer, ts: str, wait_s: int) -> LongPollAnswer:
        """One long poll: ``{server}?act=a_check&key=…&ts=…&wait=…``.

        Errors name no URL: its query carries the long-poll key.
        """
        query = {"act": "a_check", "key": server.key, "ts": ts, "wait": str(wait_s)}
        timeout = aiohttp.ClientTimeout(total=wait_s + POLL_REQUEST_MARGIN_S)
        http = self.session()
        try:
            async with http.get(server.server, params=query, timeout=timeout) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"VK long poll failed: {type(exc).__name__}") from None
        answer = _json_object(body) if status == 200 else None
        if answer is None:
            raise TransientError(f"VK long poll answered HTTP {status} without a JSON body")
        return _parse(LongPollAnswer, answer, "long poll")


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return answer if isinstance(answer, dict) else None


def _parse(model: type[M], value: Any, what: str) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise TransientError(
            f"VK {what} answered something unexpected ({exc.error_count()} errors)"
        ) from None


def _describe(exc: BaseException) -> str:
    """An aiohttp error's kind and text; the URL there is the API's (the token is in the body)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

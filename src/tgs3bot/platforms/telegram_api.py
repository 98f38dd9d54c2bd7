"""aiogram's Bot API client, tuned for the bot's hot path through aiogram's own extension points.

The text pipeline spends most of its CPU in aiogram (measured in bench/README.md). Three costs are
tuned here, and all of them leave aiogram's ``Bot`` as the client:

- **Requests go as one JSON body** (``JsonSession``), not as a form: aiogram's form building and
  urlencoding cost about three times what ``orjson`` does for the same parameters. The Bot API
  takes either; calls that upload files still go as forms.
- **Answers are parsed into the fields the bot reads.** ``FetchUpdates`` and ``SendText`` are
  aiogram methods (same names, parameters and checks) whose ``__returning__`` is a slim model
  here: a full ``Update`` costs ~45 µs to validate (every aiogram object runs Python-level
  context hooks and keeps unknown fields); the slim one ~4 µs. Unknown fields are ignored, so new
  Bot API fields never break parsing.
- **aiogram's ``Response[T]`` classes are kept alive**: ``check_response`` builds ``Response[T]`` for
  every answer, and pydantic caches that class only weakly, so after a garbage collection it is
  built again (~8 % of the event loop on a text-heavy load).

``translate`` and ``to_event`` map aiogram's errors and the slim answers onto the bot's own
(``errors``, ``events``), so nothing past ``telegram.py`` sees an aiogram type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import orjson
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageText,
    GetFile,
    GetMe,
    GetUpdates,
    SendMessage,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from aiohttp import ClientError, ClientTimeout
from aiohttp_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError
from pydantic import BaseModel, ConfigDict, Field

from tgs3bot import metrics
from tgs3bot.errors import Conflict, PlatformError, RetryAfter, TransientError, Unauthorized, Undeliverable
from tgs3bot.events import Document, Event, EventKind

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.types import InlineKeyboardMarkup, ReplyParameters

JSON_HEADERS = {"Content-Type": "application/json"}
# What aiohttp_socks raises when the proxy (TGS3BOT_TELEGRAM_PROXY) is down, refuses or stalls:
# plain Exceptions, not aiohttp's ClientError, so aiogram's own session lets them through unmapped.
PROXY_ERRORS = (ProxyConnectionError, ProxyError, ProxyTimeoutError)


class _Slim(BaseModel):
    """A read-only view of a Bot API object: only the declared fields, the rest ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ChatRef(_Slim):
    id: int
    type: str


class UserRef(_Slim):
    id: int


class DocumentRef(_Slim):
    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class MessageRef(_Slim):
    message_id: int
    chat: ChatRef
    from_user: UserRef | None = Field(None, alias="from")
    text: str | None = None
    document: DocumentRef | None = None


class CallbackRef(_Slim):
    id: str
    from_user: UserRef = Field(alias="from")
    message: MessageRef | None = None  # also an inaccessible message: it still has chat and message_id
    data: str | None = None


class UpdateRef(_Slim):
    update_id: int
    message: MessageRef | None = None
    callback_query: CallbackRef | None = None


class SentRef(_Slim):
    message_id: int


class FetchUpdates(GetUpdates):
    """getUpdates, answered as ``UpdateRef`` views."""

    __returning__ = list[UpdateRef]


class SendText(SendMessage):
    """sendMessage, answered with the sent message's id only."""

    __returning__ = SentRef  # type: ignore[assignment]

    if TYPE_CHECKING:  # the parameters the bot uses (the pydantic plugin sees every field as required)

        def __init__(
            self,
            *,
            chat_id: int | str,
            text: str,
            reply_parameters: ReplyParameters | None = None,
            reply_markup: InlineKeyboardMarkup | None = None,
        ) -> None: ...


_RESPONSE_TYPES = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]
    for method in (
        FetchUpdates,
        SendText,
        EditMessageText,
        AnswerCallbackQuery,
        GetFile,
        GetMe,
        DeleteWebhook,
        SetMyCommands,
    )
)
"""Strong references to the ``Response[T]`` classes of the bot's calls (see the module's text)."""


class JsonSession(AiohttpSession):
    """aiogram's aiohttp session, sending each call's parameters as one JSON body.

    A failing proxy surfaces as ``TelegramNetworkError``, like any other network failure.
    """

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> TelegramType:
        files: dict[str, Any] = {}
        fields = method.model_dump(warnings=False, exclude_none=True)
        # aiogram's own value preparation (defaults resolved, None dropped, files collected); nested
        # objects stay objects instead of being JSON-encoded into form fields.
        params = self.prepare_value(fields, bot=bot, files=files, _dumps_json=False)
        if files:  # uploads (the bot sends none) go as aiogram's forms
            try:
                return await super().make_request(bot, method, timeout)
            except PROXY_ERRORS as exc:
                raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        # The same error mapping as aiogram's own make_request, so callers see the same exceptions.
        try:
            async with session.post(
                url,
                data=orjson.dumps(params),
                headers=JSON_HEADERS,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as resp:
                raw_result = await resp.text()
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except (ClientError, *PROXY_ERRORS) as exc:
            raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        response = self.check_response(bot=bot, method=method, status_code=resp.status, content=raw_result)
        return cast(TelegramType, response.result)


def translate(exc: Exception) -> PlatformError:
    """Map an aiogram exception onto the bot's own error tree, and count it (``metrics``)."""
    error = _translate(exc)
    metrics.bot_api_error(type(error), getattr(getattr(exc, "method", None), "__api_method__", "unknown"))
    return error


def _translate(exc: Exception) -> PlatformError:
    text = str(exc)
    if isinstance(exc, TelegramRetryAfter):
        return RetryAfter(float(exc.retry_after), text)
    if isinstance(exc, TelegramUnauthorizedError):
        return Unauthorized(text)
    if isinstance(exc, TelegramConflictError):
        return Conflict(text)
    if isinstance(exc, TelegramForbiddenError):
        return Undeliverable(text)
    if isinstance(exc, TelegramBadRequest) and "chat not found" in text.lower():
        return Undeliverable(text)
    # TelegramEntityTooLarge is a TelegramNetworkError, but retrying cannot help it.
    if isinstance(exc, TelegramEntityTooLarge):
        return PlatformError(text)
    if isinstance(exc, TelegramNetworkError | TelegramServerError | ClientDecodeError):
        return TransientError(text)
    return PlatformError(text)


def to_event(update: UpdateRef) -> Event | None:
    """The bot's view of an update, or None for kinds the bot does not handle."""
    if (message := update.message) is not None:
        document = message.document
        return Event(
            update_id=update.update_id,
            kind=EventKind.MESSAGE,
            chat_id=message.chat.id,
            user_id=message.from_user.id if message.from_user else message.chat.id,
            private=message.chat.type == "private",
            message_id=message.message_id,
            text=message.text,
            document=Document(
                file_id=document.file_id,
                file_unique_id=document.file_unique_id,
                file_name=document.file_name,
                mime_type=document.mime_type,
                file_size=document.file_size,
            )
            if document is not None
            else None,
        )
    if (query := update.callback_query) is not None and query.message is not None:
        # Callback queries belong to the chat of the message their button hangs on (per-chat order).
        return Event(
            update_id=update.update_id,
            kind=EventKind.CALLBACK,
            chat_id=query.message.chat.id,
            user_id=query.from_user.id,
            private=query.message.chat.type == "private",
            message_id=query.message.message_id,
            callback_id=query.id,
            callback_data=query.data,
        )
    return None

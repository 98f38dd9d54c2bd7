"""The Telegram platform: aiogram's ``Bot`` as a typed Bot API client, and nothing else of aiogram.

This module turns Bot API updates into ``events.Event`` and aiogram's exceptions into the bot's own
(``errors``), retries what is worth retrying, and streams files without holding them in memory.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar, cast

import aiohttp
import orjson
import structlog
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageText,
    GetFile,
    GetMe,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from aiogram.utils.token import TokenValidationError

from tgs3bot import replies
from tgs3bot.config import BackoffConfig, download_limit
from tgs3bot.errors import (
    FileUnavailable,
    PlatformError,
    RetryAfter,
    StartupError,
    TransferError,
    TransientError,
    Unauthorized,
    Undeliverable,
)
from tgs3bot.events import Document, Keyboard, UpdateBatch
from tgs3bot.localfiles import LocalFiles, read_chunks
from tgs3bot.platforms.telegram_api import (
    PROXY_ERRORS,
    FetchUpdates,
    JsonSession,
    SendText,
    UpdateRef,
    to_event,
    translate,
)

T = TypeVar("T")
log = structlog.get_logger(__name__)

CHUNK_SIZE = 256 * 1024
ALLOWED_UPDATES = ["message", "callback_query"]
# The long poll itself lasts timeout_s; the HTTP request must outlive it or every poll is cut off.
POLL_REQUEST_MARGIN_S = 15
STARTUP_CALL_TIMEOUT_S = 8  # a rejected token must end the start within 10 s
# getMe and deleteWebhook together, retries included: an unreachable Bot API (or proxy) ends the
# start in this time (plus the seconds of importing aiogram), not after every retry's full
# request timeout (48 s before).
STARTUP_BUDGET_S = 10
# A download may stall between chunks for this long before it counts as broken.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)


class TelegramPlatform:
    """The Bot API client the poller and the handlers use (see ``interfaces.Platform``)."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        *,
        api_url: str = "https://api.telegram.org",
        local_files: LocalFiles | None = None,
        proxy: str | None = None,
        backoff: BackoffConfig | None = None,
    ) -> None:
        self._session = session = JsonSession(
            api=TelegramAPIServer.from_base(api_url, is_local=local_files is not None),
            proxy=proxy,
            json_loads=orjson.loads,  # parsing getUpdates batches is a hot path; orjson is ~3x faster
            json_dumps=_orjson_dumps,
        )
        try:
            self._bot = Bot(token, session=session)
        except TokenValidationError:
            raise StartupError("the Telegram bot token is malformed (expected 123456:ABC…)") from None
        self._backoff = backoff or BackoffConfig()
        self._local_files = local_files  # set in local mode: files are read from disk
        self.username: str | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._bot.session.close()

    async def start(self) -> None:
        """Check the token (getMe) and make sure polling works (deleteWebhook, keeping updates).

        Both calls, retries included, end within ``STARTUP_BUDGET_S``; any failure is a
        ``StartupError`` with the last error (retries are logged at debug level only, so a failed
        start is one line).
        """
        deadline = asyncio.get_running_loop().time() + STARTUP_BUDGET_S
        try:
            me = await self._call(GetMe(), STARTUP_CALL_TIMEOUT_S, deadline=deadline)
        except Unauthorized:
            raise StartupError("Telegram rejected the bot token (401 Unauthorized)") from None
        except PlatformError as exc:
            raise StartupError(f"could not check the bot token with Telegram: {exc}") from None
        self.username = me.username
        try:
            # Without drop_pending_updates: what users sent while the bot was down is still handled.
            await self._call(DeleteWebhook(), STARTUP_CALL_TIMEOUT_S, deadline=deadline)
        except PlatformError as exc:
            raise StartupError(f"could not switch Telegram to polling (deleteWebhook): {exc}") from None

    async def get_updates(self, offset: int | None, timeout_s: int, limit: int = 100) -> UpdateBatch:
        """One long poll; errors are raised translated, never retried here (the poller decides)."""
        method = FetchUpdates(
            offset=offset, limit=min(max(limit, 1), 100), timeout=timeout_s, allowed_updates=ALLOWED_UPDATES
        )
        try:
            answer = await self._bot(method, request_timeout=timeout_s + POLL_REQUEST_MARGIN_S)
        except (TelegramAPIError, ClientDecodeError) as exc:
            raise translate(exc) from exc
        updates = cast(list[UpdateRef], answer)  # FetchUpdates parses into UpdateRef (see telegram_api)
        next_offset = updates[-1].update_id + 1 if updates else None
        events = tuple(e for e in map(to_event, updates) if e is not None)
        return UpdateBatch(events=events, next_offset=next_offset)

    async def send_text(
        self, chat_id: int, text: str, *, reply_to: int | None = None, buttons: Keyboard | None = None
    ) -> int | None:
        """Send a message; None if Telegram refuses it for good (blocked, chat not found)."""
        reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
        method = SendText(chat_id=chat_id, text=text, reply_parameters=reply, reply_markup=_markup(buttons))
        try:
            message = await self._call(method)
        except Undeliverable as exc:
            log.warning("reply_dropped", chat_id=chat_id, reason=str(exc))
            return None
        return message.message_id

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, *, buttons: Keyboard | None = None
    ) -> bool:
        """Edit a message; False when Telegram refuses (gone, not modified, blocked): nothing to retry."""
        method = EditMessageText(
            chat_id=chat_id, message_id=message_id, text=text, reply_markup=_markup(buttons)
        )
        try:
            await self._call(method)
        except PlatformError as exc:
            log.info("edit_refused", chat_id=chat_id, message_id=message_id, reason=str(exc))
            return False
        return True

    async def set_commands(self, commands: Sequence[tuple[str, str]]) -> None:
        """Register the command menu shown by Telegram clients."""
        menu = [BotCommand(command=name, description=text) for name, text in commands]
        await self._call(SetMyCommands(commands=menu))

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """Answer a callback query; a stale one (older than Telegram keeps them) is ignored."""
        try:
            await self._call(AnswerCallbackQuery(callback_query_id=callback_id, text=text))
        except PlatformError as exc:
            log.info("callback_answer_failed", reason=str(exc))

    @asynccontextmanager
    async def open_file(self, document: Document) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a document for streaming; raises ``FileUnavailable`` when Telegram refuses it.

        The reasons given are fixed phrases by kind of failure (``replies``), never an error's
        text: aiohttp's texts carry the request URL, and the bot token in it. The detail is logged
        (the logs redact the token).
        """
        file_path = await self._file_path(document)
        if self._local_files is not None:
            yield read_chunks(self._local_files.resolve(file_path))
            return
        url = self._bot.session.api.file_url(self._bot.token, file_path)
        http = await self._session.create_session()  # aiogram's, so the proxy applies too
        try:
            response = await http.get(url, timeout=DOWNLOAD_TIMEOUT)
        except (aiohttp.ClientError, TimeoutError, *PROXY_ERRORS) as exc:
            log.warning("download_failed", error=f"{type(exc).__name__}: {exc}")
            raise TransferError(replies.DOWNLOAD_NOT_STARTED) from exc
        try:
            if response.status != 200:
                # An error page must never be stored as the file.
                raise FileUnavailable(replies.download_failed(response.status))
            yield _guard_stream(response.content.iter_chunked(CHUNK_SIZE))
        finally:
            response.release()

    async def _file_path(self, document: Document) -> str:
        """getFile's path for the document, or ``FileUnavailable`` with a fixed reason."""
        try:
            file = await self._call(GetFile(file_id=document.file_id))
        except PlatformError as exc:
            log.warning("get_file_failed", file_id=document.file_id, kind=type(exc).__name__, error=str(exc))
            raise FileUnavailable(self._refusal_reason(exc)) from exc
        if not file.file_path:
            raise FileUnavailable(replies.FILE_WITHOUT_PATH)
        return file.file_path

    def _refusal_reason(self, error: PlatformError) -> str:
        """The user's reason for a failed getFile, chosen by the kind of error alone."""
        if isinstance(error, TransientError | RetryAfter):
            return replies.FILE_NETWORK_TROUBLE
        if "file is too big" in str(error).lower():  # Telegram's 400 for files over its limit
            return replies.file_too_big(download_limit(local_mode=self._local_files is not None))
        return replies.FILE_REFUSED

    async def _call(
        self, method: TelegramMethod[T], request_timeout: int | None = None, *, deadline: float | None = None
    ) -> T:
        """Call a Bot API method, waiting out 429s and retrying network errors and 5xx a few times.

        With a ``deadline`` (the loop's clock) no request or wait runs past it, the last error is
        raised instead, and retries are logged at debug level (the caller reports the failure).
        """
        attempt = 0
        while True:
            try:
                return await self._bot(method, request_timeout=_within(request_timeout, deadline))
            except (TelegramRetryAfter, TelegramNetworkError, TelegramServerError, ClientDecodeError) as exc:
                error = translate(exc)
                attempt += 1
                delay = self._retry_delay(error, attempt, deadline)
                if delay is None:
                    raise error from exc
                log_retry = log.warning if deadline is None else log.debug
                log_retry("telegram_retry", method=method.__api_method__, delay_s=delay, error=str(exc))
                await asyncio.sleep(delay)
            except TelegramAPIError as exc:  # 4xx: retrying cannot help
                raise translate(exc) from exc

    def _retry_delay(self, error: PlatformError, attempt: int, deadline: float | None) -> float | None:
        """The wait before the next attempt, or None when the error must be raised now."""
        if not isinstance(error, RetryAfter | TransientError) or attempt >= self._backoff.send_attempts:
            return None
        if isinstance(error, RetryAfter):
            delay = min(error.retry_after_s, self._backoff.max_retry_after_s)
        else:
            delay = self._backoff.delay_s(attempt - 1, random.random())  # noqa: S311 (jitter, not crypto)
        if deadline is not None and asyncio.get_running_loop().time() + delay >= deadline:
            return None
        return delay


def _within(request_timeout: int | None, deadline: float | None) -> int | None:
    """The request timeout, cut to what is left before ``deadline`` (at least 1 s)."""
    if deadline is None:
        return request_timeout
    left = max(1, math.ceil(deadline - asyncio.get_running_loop().time()))
    return left if request_timeout is None else min(request_timeout, left)


def _orjson_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _markup(buttons: Keyboard | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    rows = [[InlineKeyboardButton(text=b.text, callback_data=b.data) for b in row] for row in buttons]
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _guard_stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Re-raise a broken download as ``TransferError`` (aiohttp's texts carry the file URL)."""
    try:
        async for chunk in chunks:
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("download_broke_off", error=f"{type(exc).__name__}: {exc}")
        raise TransferError(replies.DOWNLOAD_BROKE_OFF) from exc

"""Logging: structlog for our events, the standard library's loggers routed through it.

JSON on a non-terminal (one object per line on stderr), a readable console format on a terminal.
The bot token is replaced in every rendered value (Telegram file URLs and aiohttp error texts
carry it), and tracebacks never render local variables.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, Literal

import orjson
import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "***"


class RedactSecrets:
    """A processor that replaces each secret, wherever it appears in the event dict, by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        if not self._secrets:
            return event_dict
        return {key: self._redact(value) for key, value in event_dict.items()}

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self._redact(str(value))


def token_secrets(token: str) -> list[str]:
    """The strings to hide for a bot token: the token, and its secret half after the colon."""
    secret_half = token.partition(":")[2]
    return [token, secret_half] if len(secret_half) >= 8 else [token]


class _StderrLogger:
    """structlog's logger for the bot's own events: each rendered line straight to stderr.

    Our events skip the standard library's ``LogRecord``, handler and formatter (half the cost of
    an INFO line, measured); the library's own records still go through ``logging``. Both write
    under the stderr handler's lock, so lines never interleave. ``sys.stderr`` is looked up per
    line, so a stream swapped in later (pytest's capture) is the one written to.
    """

    __slots__ = ("_lock", "name")

    def __init__(self, name: str, lock: Any) -> None:
        self.name = name  # read by structlog.stdlib.add_logger_name
        self._lock = lock

    def msg(self, line: str) -> None:
        with self._lock:
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = msg


def _json_text(value: Any, **_: Any) -> str:
    # Values are already redacted, and anything exotic turned into text, by RedactSecrets.
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(
    fmt: Literal["json", "console"] | None,
    level: str = "INFO",
    secrets: Iterable[str] = (),
) -> Literal["json", "console"]:
    """Configure structlog and the standard library once, for the whole process; return the format."""
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    final = _rendering(fmt, secrets)
    handler = _route_standard_logging(shared, final, level)
    lock = handler.lock

    def logger_factory(name: str = "tgs3bot", *_: Any) -> _StderrLogger:
        return _StderrLogger(name, lock)

    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *final],
        logger_factory=logger_factory,
        # Filters by level before any processor runs: a skipped event costs almost nothing.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLogger().level),
        cache_logger_on_first_use=True,
    )
    return fmt


def _rendering(fmt: Literal["json", "console"], secrets: Iterable[str]) -> list[Processor]:
    """The last processors: exceptions rendered without locals, secrets redacted, one line out."""
    if fmt == "json":
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        return [
            structlog.processors.ExceptionRenderer(transformer),
            RedactSecrets(secrets),
            structlog.processors.JSONRenderer(serializer=_json_text),
        ]
    return [
        structlog.processors.format_exc_info,
        RedactSecrets(secrets),
        structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
    ]


def _route_standard_logging(shared: list[Processor], final: list[Processor], level: str) -> logging.Handler:
    """Send the standard library's records (aiogram, aiohttp, botocore) through the same processors."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Their INFO/DEBUG chatter (every request, every connection) drowns the bot's own events.
    for noisy in ("aiohttp.access", "botocore", "aiobotocore", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    return handler

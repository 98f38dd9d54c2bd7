"""The command line: ``tgs3bot run [--flags]``.

Every setting but the token has a ``--kebab-case`` flag (the token would show in ``ps``). Errors
that stop the bot are one line on stderr, never a traceback; the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from pydantic import ValidationError

from tgs3bot import __version__
from tgs3bot.config import Settings, load_settings
from tgs3bot.errors import FatalPollingError, StartupError
from tgs3bot.logs import configure_logging, token_secrets

EXIT_RUNTIME_ERROR = 1
EXIT_STARTUP_ERROR = 2
SECRET_FIELDS = frozenset({"telegram_token"})


def build_parser() -> argparse.ArgumentParser:
    """``tgs3bot run`` with a flag for every setting except the token."""
    parser = argparse.ArgumentParser(prog="tgs3bot", description="Save Telegram documents into S3.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the bot",
        description="Run the bot. Flags override TGS3BOT_* variables, which override .env.",
    )
    for name, field in Settings.model_fields.items():
        if name in SECRET_FIELDS:
            continue
        flag = "--" + name.replace("_", "-")
        env = "TGS3BOT_" + name.upper()
        help_text = f"{field.description or name} (env {env})"
        if field.annotation is bool:
            run.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            run.add_argument(flag, dest=name, metavar=name.upper(), help=help_text)
    return parser


def _settings_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        if field == "telegram_token" and error["type"] == "missing":
            problems.append("the Telegram bot token is not set (TGS3BOT_TELEGRAM_TOKEN)")
        else:
            problems.append(f"TGS3BOT_{field.upper()}: {error['msg']}")
    return "invalid settings: " + "; ".join(problems)


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop if chosen and installed; None means asyncio's own."""
    if choice != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows, PyPy)
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tgs3bot`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "command"}
    log = structlog.get_logger("tgs3bot")
    try:
        settings = load_settings(overrides)
    except ValidationError as exc:
        configure_logging(None)
        log.error("startup_failed", error=_settings_error(exc))
        return EXIT_STARTUP_ERROR
    configure_logging(
        settings.log_format, settings.log_level, token_secrets(settings.telegram_token.get_secret_value())
    )
    from tgs3bot.app import App  # deferred: importing aiogram takes seconds; --help should not

    try:
        with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
            return runner.run(App(settings).run())
    except StartupError as exc:
        log.error("startup_failed", error=str(exc))
        return EXIT_STARTUP_ERROR
    except FatalPollingError as exc:
        log.error("polling_stopped", error=str(exc))
        return EXIT_RUNTIME_ERROR
    except Exception:
        log.exception("bot_crashed")
        return EXIT_RUNTIME_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

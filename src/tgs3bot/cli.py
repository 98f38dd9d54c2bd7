"""The command line: ``tgs3bot run|poll|work [--flags]``.

``run`` is the whole bot in one process; with Redis (TGS3BOT_REDIS_URL), ``poll`` runs only the
poller and ``work`` only the workers, so the work spreads over processes and hosts.

Every setting but the secrets (the token, the Redis URL with its password) has a ``--kebab-case``
flag: a secret on the command line would show in ``ps``. Errors that stop the bot are one line on
stderr, never a traceback; the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog
from pydantic import ValidationError

from tgs3bot import __version__
from tgs3bot.config import Settings, load_settings
from tgs3bot.errors import FatalPollingError, StartupError
from tgs3bot.logs import configure_logging, token_secrets

EXIT_RUNTIME_ERROR = 1
EXIT_STARTUP_ERROR = 2
SECRET_FIELDS = frozenset({"telegram_token", "vk_token", "redis_url"})
ROLES = {
    "run": "run the bot: the poller and the workers",
    "poll": "only poll the platforms into Redis (needs TGS3BOT_REDIS_URL; one of several polls at a time)",
    "work": "only handle updates from Redis (needs TGS3BOT_REDIS_URL; run as many as you like)",
}


def build_parser() -> argparse.ArgumentParser:
    """``tgs3bot run|poll|work``, each with a flag for every setting except the secrets."""
    parser = argparse.ArgumentParser(prog="tgs3bot", description="Save Telegram and VK documents into S3.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for role, help_text in ROLES.items():
        command = commands.add_parser(
            role,
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}. "
            "Flags override TGS3BOT_* variables, which override .env.",
        )
        _add_setting_flags(command)
    return parser


def _add_setting_flags(command: argparse.ArgumentParser) -> None:
    for name, field in Settings.model_fields.items():
        if name in SECRET_FIELDS:
            continue
        flag = "--" + name.replace("_", "-")
        env = "TGS3BOT_" + name.upper()
        help_text = f"{field.description or name} (env {env})"
        if field.annotation is bool:
            command.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            command.add_argument(flag, dest=name, metavar=name.upper(), help=help_text)


def _settings_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        if not error["loc"]:  # a rule across fields: its message names the variables
            problems.append(str(error["msg"]).removeprefix("Value error, "))
        else:
            problems.append(f"TGS3BOT_{str(error['loc'][0]).upper()}: {error['msg']}")
    return "invalid settings: " + "; ".join(problems)


def _secrets(settings: Settings) -> list[str]:
    """What the logs must never show: the tokens (and a Telegram token's secret half), the Redis password."""
    secrets = []
    if settings.telegram_token is not None:
        secrets += token_secrets(settings.telegram_token.get_secret_value())
    if settings.vk_token is not None:
        secrets.append(settings.vk_token.get_secret_value())
    if settings.redis_url is not None:
        password = urlsplit(settings.redis_url.get_secret_value()).password
        if password:
            secrets += [password, settings.redis_url.get_secret_value()]
    return secrets


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
    configure_logging(settings.log_format, settings.log_level, _secrets(settings))
    if args.command != "run" and settings.redis_url is None:
        log.error("startup_failed", error=f"tgs3bot {args.command} needs Redis: set TGS3BOT_REDIS_URL")
        return EXIT_STARTUP_ERROR
    from tgs3bot.app import App  # deferred: importing aiogram takes seconds; --help should not

    try:
        with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
            return runner.run(App(settings, role=args.command).run())
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

"""Real bot processes for end-to-end tests: their environment, start, output and exit.

Each test starts the installed console script (or ``run_bot.py``) as a subprocess, configured only
through the environment, with stdout and stderr going to files (not a terminal, so the bot logs
JSON lines). Waits are for events (a getUpdates call, a reply, an exit), never for a sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.fakes.telegram import TOKEN, FakeTelegram

TGS3BOT_RUN = [str(Path(sys.executable).parent / "tgs3bot"), "run"]
RUN_BOT_PY = [sys.executable, str(Path(__file__).resolve().parents[1] / "run_bot.py")]
# Deadlines, not expectations: importing aiogram alone takes ~5 s on an idle machine, and a busy
# one may take several times that. They only bound a hang (pytest's own timeout is 120 s a test).
START_TIMEOUT_S = 60
EXIT_TIMEOUT_S = 60  # above SHUTDOWN_TIMEOUT_S, so a slow drain is reported by the bot, not here
REPLY_TIMEOUT_S = 60
SHUTDOWN_TIMEOUT_S = 20  # TGS3BOT_SHUTDOWN_TIMEOUT: well above what the held transfer needs
REJECTED_TOKEN = "987654321:AAAnotherTokenThatTheFakeRejects-xyz"
MALFORMED_TOKEN = "not-a-token"
CHAT = 4242


def secrets_of(token: str) -> list[str]:
    """The token and, when it has one, its secret half (after the colon)."""
    secret_half = token.partition(":")[2]
    return [token, secret_half] if secret_half else [token]


def bot_env(telegram: FakeTelegram, bucket: str, moto_endpoint: str, **overrides: str) -> dict[str, str]:
    """The bot's whole configuration, as environment variables (no TGS3BOT_* inherited)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGS3BOT_")}
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env |= {
        "TGS3BOT_TELEGRAM_TOKEN": TOKEN,
        "TGS3BOT_TELEGRAM_API_URL": telegram.base_url,
        "TGS3BOT_S3_BUCKET": bucket,
        "TGS3BOT_S3_ENDPOINT_URL": moto_endpoint,
        "TGS3BOT_S3_REGION": "us-east-1",
        "TGS3BOT_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT_S),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return env | overrides


def _open_outputs(directory: Path, n: int) -> tuple[IO[bytes], IO[bytes]]:
    """Fresh files for one process's stdout and stderr."""
    return (directory / f"bot{n}.stdout").open("wb"), (directory / f"bot{n}.stderr").open("wb")


@dataclass
class BotProcess:
    """A started bot process and where its output goes."""

    proc: asyncio.subprocess.Process
    stdout_path: Path
    stderr_path: Path

    async def wait_exit(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """Wait for the process to end; return its exit code (failing with its stderr on a timeout)."""
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            pytest.fail(f"the bot did not exit within {timeout_s} s; stderr:\n{self.stderr()}")
        return code

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr().splitlines() if line.strip()]

    def log_records(self) -> list[dict[str, Any]]:
        """Every non-empty line of stdout and stderr, each asserted to be one JSON object."""
        records = []
        for stream, text in (("stdout", self.stdout()), ("stderr", self.stderr())):
            for line in text.splitlines():
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    pytest.fail(f"a {stream} line is not JSON: {line!r}")
                assert isinstance(record, dict), f"a {stream} line is not a JSON object: {line!r}"
                records.append(record)
        return records

    def assert_no_traceback(self) -> None:
        """No Python traceback, neither printed nor rendered into a JSON record (``exception``)."""
        assert "Traceback" not in self.stdout() + self.stderr()
        assert [r for r in self.log_records() if "exception" in r or "exc_info" in r] == []

    def assert_no_secret(self, token: str) -> None:
        """Neither the token nor its secret half appears in stdout or stderr."""
        output = self.stdout() + self.stderr()
        for secret in secrets_of(token):
            assert secret not in output, f"{secret!r} leaked into the bot's output"


Launch = Callable[..., Awaitable[BotProcess]]


@pytest.fixture
async def launch(tmp_path: Path) -> AsyncIterator[Launch]:
    """Start bot processes in ``tmp_path`` (no stray .env); any still running are killed after the test."""
    started: list[BotProcess] = []

    async def start(env: dict[str, str], command: Sequence[str] = TGS3BOT_RUN) -> BotProcess:
        stdout, stderr = _open_outputs(tmp_path, len(started))
        with stdout, stderr:  # the child has its own descriptors once started
            proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=tmp_path,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        bot = BotProcess(proc, Path(stdout.name), Path(stderr.name))
        started.append(bot)
        return bot

    yield start
    for bot in started:
        if bot.proc.returncode is None:
            bot.proc.kill()
            await bot.proc.wait()


async def wait_polling(telegram: FakeTelegram, bot: BotProcess) -> None:
    """Return once the bot polls; fail at once (with its stderr) if the process ends first."""
    await wait_unless_exited(
        bot, telegram.wait_for_call(lambda c: c.method == "getUpdates", timeout=START_TIMEOUT_S), "polling"
    )


async def wait_unless_exited(bot: BotProcess, waiting: Awaitable[object], what: str) -> None:
    """Await ``waiting``; fail at once (with the bot's stderr) if the process ends first."""
    pending = asyncio.ensure_future(waiting)
    exited = asyncio.ensure_future(bot.proc.wait())
    await asyncio.wait({pending, exited}, return_when=asyncio.FIRST_COMPLETED)
    exited.cancel()
    if not pending.done():
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        pytest.fail(f"the bot exited with {bot.proc.returncode} before {what}; stderr:\n{bot.stderr()}")
    pending.result()  # a timeout fails here, naming the calls seen


async def failed_start_line(telegram: FakeTelegram, bot: BotProcess) -> str:
    """Wait for a start that must fail: non-zero, no poll or traceback; return its one stderr line."""
    code = await bot.wait_exit()
    assert code != 0
    assert telegram.calls_of("getUpdates") == []
    lines = bot.stderr_lines()
    assert len(lines) == 1, lines
    bot.assert_no_traceback()
    return lines[0]

"""End to end: the real ``tgs3bot run`` process against the fake Bot API and moto's S3 server.

Each test starts the installed console script (or ``run_bot.py``) as a subprocess, configured only
through the environment, with stdout and stderr going to files (not a terminal, so the bot logs
JSON lines). Importing aiogram takes seconds, so the module starts only four processes and waits
for "the bot is polling" on the fake's getUpdates call, never on a sleep.

No test asserts how fast anything happens: each waits for its event (a call, a reply, the exit)
under a deadline generous enough for a loaded machine, which only turns a hang into a failure.
How long a failed start takes is a figure for the README, not an assertion here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.helpers import object_keys, read_object

pytestmark = pytest.mark.e2e

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
    polling = asyncio.ensure_future(
        telegram.wait_for_call(lambda c: c.method == "getUpdates", timeout=START_TIMEOUT_S)
    )
    exited = asyncio.ensure_future(bot.proc.wait())
    await asyncio.wait({polling, exited}, return_when=asyncio.FIRST_COMPLETED)
    exited.cancel()
    if not polling.done():
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        pytest.fail(f"the bot exited with {bot.proc.returncode} before polling; stderr:\n{bot.stderr()}")
    polling.result()  # a timeout fails here, naming the calls seen


async def failed_start_line(telegram: FakeTelegram, bot: BotProcess) -> str:
    """Wait for a start that must fail: non-zero, no poll or traceback; return its one stderr line."""
    code = await bot.wait_exit()
    assert code != 0
    assert telegram.calls_of("getUpdates") == []
    lines = bot.stderr_lines()
    assert len(lines) == 1, lines
    bot.assert_no_traceback()
    return lines[0]


async def test_a_full_session_then_sigterm_mid_transfer_finishes_it_and_exits_0(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """One real process greets, refuses non-documents, saves a document verbatim, and on SIGTERM
    finishes the transfer in hand, replies, confirms the updates and exits 0."""
    bot = await launch(bot_env(telegram, bucket, moto_endpoint))
    await wait_polling(telegram, bot)

    telegram.add_update(updates.message(CHAT, text="/start"))
    texts = await telegram.wait_for_text(CHAT, "[greeting]", timeout=REPLY_TIMEOUT_S)
    assert len(texts) == 1

    telegram.add_update(updates.message(CHAT, text="hello"))
    texts = await telegram.wait_for_text(CHAT, "[document is required]", timeout=REPLY_TIMEOUT_S)
    assert len(texts) == 2

    picture = telegram.add_file(os.urandom(5_000), file_name=None, mime_type="image/jpeg")
    telegram.add_update(updates.message(CHAT, photo=picture))
    texts = await telegram.wait_for_text(CHAT, "[document is required]", count=2, timeout=REPLY_TIMEOUT_S)
    assert len(texts) == 3
    assert telegram.calls_of("getFile") == [], "a photo sent as a photo is not a file"

    name = "Отчёт [v2] (final).pdf"
    content = os.urandom(300 * 1024)
    document = telegram.add_file(content, file_name=name, mime_type="application/pdf")
    telegram.add_update(updates.message(CHAT, document=document))
    texts = await telegram.wait_for_text(CHAT, "[document has been saved]", timeout=REPLY_TIMEOUT_S)
    assert len(texts) == 5
    assert "[document]" in texts[3]
    assert "[document has been saved]" in texts[4]
    assert name in texts[4]
    data, stored = await read_object(s3, bucket, name)
    assert (data, stored["ContentType"]) == (content, "application/pdf")

    # SIGTERM while a transfer is in hand: its download is held after the first chunk.
    hold = asyncio.Event()
    second_name, second_content = "second part.bin", os.urandom(200 * 1024)
    second = telegram.add_file(
        second_content, file_name=second_name, mime_type="application/x-test", hold=hold
    )
    last_update_id = telegram.add_update(updates.message(CHAT, document=second))
    await telegram.wait_download_started(second["file_id"], timeout=REPLY_TIMEOUT_S)
    # The poller has taken the update and is long-polling again, so the stop must abandon that poll.
    await telegram.wait_for_call(
        lambda c: c.method == "getUpdates" and str(c.params.get("offset")) == str(last_update_id + 1),
        timeout=REPLY_TIMEOUT_S,
    )
    bot.proc.send_signal(signal.SIGTERM)
    # The long poll was dropped: the shutdown has begun.
    await telegram.wait_polls_idle(timeout=REPLY_TIMEOUT_S)
    hold.set()

    assert await bot.wait_exit() == 0, bot.stderr()
    texts = telegram.sent(CHAT)
    assert "[document]" in texts[5]
    assert "[document has been saved]" in texts[-1]
    assert second_name in texts[-1]
    assert sum("[document has been saved]" in text for text in texts) == 2
    data, stored = await read_object(s3, bucket, second_name)
    assert (data, stored["ContentType"]) == (second_content, "application/x-test")
    assert await object_keys(s3, bucket) == sorted([name, second_name])

    polls = telegram.calls_of("getUpdates")
    confirming = polls[-1]
    assert str(confirming.params.get("timeout")) == "0"
    assert str(confirming.params.get("offset")) == str(last_update_id + 1)
    assert confirming.ok
    assert telegram.pending_update_ids == []
    assert [str(p.params.get("timeout")) for p in polls[:-1]] == ["60"] * (len(polls) - 1)
    assert telegram.max_concurrent_polls_seen == 1

    [started_record] = [r for r in bot.log_records() if r.get("event") == "bot_started"]
    assert started_record["event_loop"] == "uvloop"  # the default where uvloop is installed (here)
    bot.assert_no_traceback()
    bot.assert_no_secret(TOKEN)


async def test_a_token_telegram_rejects_ends_the_process_with_one_line(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """A well-formed token that the Bot API answers 401 for ends the process non-zero, with one
    error line about the token."""
    bot = await launch(bot_env(telegram, bucket, moto_endpoint, TGS3BOT_TELEGRAM_TOKEN=REJECTED_TOKEN))
    line = await failed_start_line(telegram, bot)

    rejected = [c for c in telegram.calls_of("getMe") if c.status == 401]
    assert rejected, "the token was never checked with Telegram"
    assert "token" in line.lower()
    bot.assert_no_secret(REJECTED_TOKEN)


async def test_a_malformed_token_ends_run_bot_py_with_one_line(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """``python3 run_bot.py`` with a token that is not ``id:secret`` exits non-zero with one error
    line about the token."""
    env = bot_env(telegram, bucket, moto_endpoint, TGS3BOT_TELEGRAM_TOKEN=MALFORMED_TOKEN)
    bot = await launch(env, RUN_BOT_PY)
    line = await failed_start_line(telegram, bot)

    assert "token" in line.lower()
    bot.assert_no_secret(MALFORMED_TOKEN)


async def test_a_missing_bucket_ends_the_process_with_one_line_naming_it(
    launch: Launch, telegram: FakeTelegram, moto_endpoint: str, s3: Any
) -> None:
    """A bucket that does not exist ends the process non-zero with one error line that names the bucket."""
    missing = f"tgs3bot-missing-{uuid.uuid4().hex[:12]}"
    bot = await launch(bot_env(telegram, missing, moto_endpoint))
    line = await failed_start_line(telegram, bot)

    assert missing not in [b["Name"] for b in (await s3.list_buckets())["Buckets"]], "nothing created it"
    assert missing in line
    assert json.loads(line)["level"] == "error"
    bot.assert_no_secret(TOKEN)


# A second instance polling the same token (409 Conflict for over 90 s) is covered by unit-level tests.

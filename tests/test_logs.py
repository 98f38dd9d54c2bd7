"""Logs are JSON lines without the token, whether it hides in a message, a URL or a traceback."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from tgs3bot.logs import RedactSecrets, configure_logging, token_secrets

TOKEN = "123456789:AAFakeTokenForTestsOnly-abcdefghijkl"
URL = f"https://api.telegram.org/file/bot{TOKEN}/documents/file_1.pdf"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo configure_logging after the test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    structlog.reset_defaults()
    logging.captureWarnings(False)


def test_redaction_reaches_nested_values() -> None:
    """Strings inside dicts and lists, and objects' text, are redacted."""
    redact = RedactSecrets(token_secrets(TOKEN))
    out = redact(None, "info", {"event": URL, "nested": {"list": [URL, 3]}, "obj": ValueError(URL)})
    assert TOKEN not in json.dumps(out)
    assert out["nested"]["list"][1] == 3


def test_token_secret_half_alone_is_redacted_too() -> None:
    """The part after the colon is the secret; it is hidden even without the bot id."""
    redact = RedactSecrets(token_secrets(TOKEN))
    secret = TOKEN.split(":")[1]
    assert secret not in redact(None, "info", {"event": f"url-encoded 123456789%3A{secret}"})["event"]


def test_json_lines_hide_the_token_in_messages_and_tracebacks(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our events and stdlib records render as one JSON object per line, with no token and no locals."""
    configure_logging("json", "INFO", token_secrets(TOKEN))

    def fail(url: str) -> None:
        local_url = url  # a traceback with locals would show this
        raise RuntimeError(f"GET {local_url} failed")

    try:
        fail(URL)
    except RuntimeError:
        structlog.get_logger("test").exception("download_failed", url=URL)
    logging.getLogger("aiohttp.client").warning("request to %s failed", URL)
    sys.stderr.flush()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert records[0]["event"] == "download_failed"
    assert records[0]["exception"]
    assert records[1]["logger"] == "aiohttp.client"
    text = "\n".join(lines)
    assert TOKEN not in text
    assert TOKEN.split(":")[1] not in text
    assert "local_url" not in text

"""TGS3BOT_LINK_TTL: seconds or a duration, one day by default, at most the 7 days SigV4 allows."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.processes import START_TIMEOUT_S, TGS3BOT_RUN
from tgs3bot.cli import EXIT_STARTUP_ERROR
from tgs3bot.config import MAX_LINK_TTL_S, load_settings

TOKEN = "123456789:AAFakeTokenForTestsOnly-abcdefghijkl"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, the two required settings, and no other TGS3BOT_* variable."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("TGS3BOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TGS3BOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TGS3BOT_S3_BUCKET", "docs")
    return tmp_path


def test_a_link_lasts_a_day_by_default_and_no_public_url_is_set(workdir: Path) -> None:
    """Without TGS3BOT_LINK_TTL a link works for 86400 s; links name the S3 endpoint itself."""
    settings = load_settings(env_file=workdir / ".env")
    assert settings.link_ttl == 24 * 3600
    assert settings.s3_public_url is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3600", 3600), ("90m", 5400), ("12h", 43200), ("1.5h", 5400), ("1d12h", 129600), ("7d", 604800)],
)
def test_the_ttl_is_seconds_or_a_duration(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, value: str, seconds: int
) -> None:
    """Whole seconds, or numbers with s/m/h/d units, up to exactly 7 days."""
    monkeypatch.setenv("TGS3BOT_LINK_TTL", value)
    assert load_settings(env_file=workdir / ".env").link_ttl == seconds


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("8d", "at most 7 days"),
        (str(MAX_LINK_TTL_S + 1), "at most 7 days"),
        ("0", "greater than or equal to 1"),
        ("a week", "a duration like"),
        ("-5", "a duration like"),
    ],
)
def test_a_ttl_out_of_bounds_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, value: str, why: str
) -> None:
    """Over 7 days (S3 cannot sign it), zero, or not a duration: the settings are invalid, saying why."""
    monkeypatch.setenv("TGS3BOT_LINK_TTL", value)
    with pytest.raises(ValidationError) as refused:
        load_settings(env_file=workdir / ".env")
    [error] = refused.value.errors()
    assert error["loc"] == ("link_ttl",) and why in error["msg"], error


async def test_a_ttl_over_7_days_ends_the_real_cli_with_one_line(workdir: Path) -> None:
    """`tgs3bot run` with TGS3BOT_LINK_TTL=8d exits 2 with one line naming the setting and the limit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGS3BOT_")}
    env |= {"TGS3BOT_TELEGRAM_TOKEN": TOKEN, "TGS3BOT_S3_BUCKET": "docs", "TGS3BOT_LINK_TTL": "8d"}
    proc = await asyncio.create_subprocess_exec(
        *TGS3BOT_RUN,
        cwd=workdir,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT_S)
    assert proc.returncode == EXIT_STARTUP_ERROR
    lines = [line for line in (out + err).decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    error = json.loads(lines[0])["error"]
    assert "TGS3BOT_LINK_TTL" in error and "at most 7 days" in error, error

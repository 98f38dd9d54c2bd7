"""Settings come from flags, then the environment, then .env; the CLI reports bad ones in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_logs import restore_logging
from tgs3bot.cli import build_parser, loop_factory, main
from tgs3bot.config import CLOUD_DOWNLOAD_LIMIT, LOCAL_DOWNLOAD_LIMIT, load_settings

TOKEN = "123456789:AAFakeTokenForTestsOnly-abcdefghijkl"
__all__ = ["restore_logging"]  # the fixture, used below


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and an environment without TGS3BOT_* variables."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("TGS3BOT_"):
            monkeypatch.delenv(key)
    return tmp_path


def test_defaults_from_the_spec(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the token and the bucket are required; the rest has the documented defaults."""
    monkeypatch.setenv("TGS3BOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TGS3BOT_S3_BUCKET", "docs")
    settings = load_settings(env_file=workdir / ".env")
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert (settings.concurrent_workers, settings.queue_size, settings.shutdown_timeout) == (8, 100, 30)
    assert settings.allowed_users == frozenset()
    assert settings.state_path == Path("tgs3bot-state.sqlite3")
    assert settings.download_limit == CLOUD_DOWNLOAD_LIMIT == 20 * 1024 * 1024
    assert (settings.event_loop, settings.s3_conditional_writes) == ("uvloop", "auto")


def test_flags_beat_environment_beat_dotenv(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag overrides the environment, which overrides .env."""
    (workdir / ".env").write_text(
        f"TGS3BOT_TELEGRAM_TOKEN={TOKEN}\nTGS3BOT_S3_BUCKET=from-dotenv\n"
        "TGS3BOT_QUEUE_SIZE=7\nTGS3BOT_CONCURRENT_WORKERS=3\n"
    )
    monkeypatch.setenv("TGS3BOT_QUEUE_SIZE", "11")
    monkeypatch.setenv("TGS3BOT_CONCURRENT_WORKERS", "5")
    args = build_parser().parse_args(["run", "--concurrent-workers", "2"])
    overrides = {k: v for k, v in vars(args).items() if k != "command"}
    settings = load_settings(overrides, env_file=workdir / ".env")
    assert settings.s3_bucket == "from-dotenv"
    assert settings.queue_size == 11
    assert settings.concurrent_workers == 2


def test_aws_lines_in_dotenv_reach_the_aws_chain(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_* lines in .env are exported unless the environment already sets them."""
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    (workdir / ".env").write_text(
        f"TGS3BOT_TELEGRAM_TOKEN={TOKEN}\nTGS3BOT_S3_BUCKET=b\n"
        "AWS_ACCESS_KEY_ID=from-dotenv\nAWS_SECRET_ACCESS_KEY=secret-from-dotenv\n"
    )
    load_settings(env_file=workdir / ".env")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "from-env"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "secret-from-dotenv"


def test_allowed_users_and_local_mode(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TGS3BOT_ALLOWED_USERS is a comma-separated list; local mode raises the download limit."""
    monkeypatch.setenv("TGS3BOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TGS3BOT_S3_BUCKET", "b")
    monkeypatch.setenv("TGS3BOT_ALLOWED_USERS", "1, 22,333")
    monkeypatch.setenv("TGS3BOT_TELEGRAM_LOCAL_MODE", "true")
    settings = load_settings(env_file=workdir / ".env")
    assert settings.allowed_users == frozenset({1, 22, 333})
    assert settings.download_limit == LOCAL_DOWNLOAD_LIMIT


def test_the_token_has_no_flag() -> None:
    """The token cannot be given on the command line, where ps would show it."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--telegram-token", TOKEN])


def test_secret_token_is_hidden_in_repr(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Printing the settings never shows the token."""
    monkeypatch.setenv("TGS3BOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TGS3BOT_S3_BUCKET", "b")
    settings = load_settings(env_file=workdir / ".env")
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)


def test_the_event_loop_is_uvloop_unless_asyncio_is_chosen() -> None:
    import uvloop

    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("asyncio") is None


VK_TOKEN = "vk1.a.FakeCommunityTokenForTestsOnly"


def test_vk_alone_is_a_bot_and_its_token_is_hidden(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the VK token and community set, the Telegram token is optional; the VK token never prints."""
    monkeypatch.setenv("TGS3BOT_VK_TOKEN", VK_TOKEN)
    monkeypatch.setenv("TGS3BOT_VK_GROUP_ID", "42")
    monkeypatch.setenv("TGS3BOT_VK_ALLOWED_USERS", "5, 6")
    monkeypatch.setenv("TGS3BOT_ALLOWED_USERS", "5")
    monkeypatch.setenv("TGS3BOT_S3_BUCKET", "b")
    settings = load_settings(env_file=workdir / ".env")
    assert settings.platforms == ("vk",) and settings.telegram_token is None
    assert settings.vk_api_url == "https://api.vk.com/method"
    assert settings.allowed == {("telegram", 5), ("vk", 5), ("vk", 6)}
    assert VK_TOKEN not in repr(settings) and VK_TOKEN not in str(settings)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--vk-token", VK_TOKEN])


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "no platform is set"),
        ({"TGS3BOT_VK_TOKEN": VK_TOKEN}, "TGS3BOT_VK_GROUP_ID"),
    ],
)
@pytest.mark.usefixtures("restore_logging")  # main() configures logging for the process
def test_a_bot_without_a_platform_does_not_start(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    says: str,
) -> None:
    """Neither platform (or VK without its community) is one line on stderr and exit code 2."""
    monkeypatch.setenv("TGS3BOT_S3_BUCKET", "b")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "token" in err, err
    assert VK_TOKEN not in err

"""The container image and compose.yaml.

The image test (marked ``container``) builds the Containerfile with podman once per session, on the
Debian 12 base that ``.ci/setup-podman.sh`` makes with debootstrap (no registry is needed), and runs
it with ``--network host`` against the fake Bot API and moto's S3 server, which the test starts on
127.0.0.1. It is skipped, saying why, where podman, its containers.conf (``CONTAINERS_CONF``) or the
base image is missing: ``.ci/run`` sets all three up. The compose checks only read files, and run
everywhere.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.helpers import read_object
from tests.processes import CHAT, REPLY_TIMEOUT_S, START_TIMEOUT_S, secrets_of
from tgs3bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
BASE = "localhost/bookworm-python:base"  # made by .ci/setup-podman.sh
IMAGE = "localhost/tgs3bot:test"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # the host's, for pip behind an intercepting proxy
APP_UID = "10001"  # the Containerfile's user
STOP_TIMEOUT_S = 60  # `podman stop -t`, above TGS3BOT_SHUTDOWN_TIMEOUT (20 s): the exit is the bot's own
PODMAN = shutil.which("podman") or "podman"  # a full path where installed
SETTING_NAMES = {f"TGS3BOT_{name.upper()}" for name in Settings.model_fields}


def _podman_missing() -> str | None:
    """Why podman cannot run containers here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed: run .ci/setup-podman.sh (as .ci/run does)"
    conf = os.environ.get("CONTAINERS_CONF", "")
    if not Path(conf).is_file():
        return (
            "CONTAINERS_CONF is not set to a file: run .ci/setup-podman.sh and "
            "export CONTAINERS_CONF=/tmp/podman-ci/containers.conf (as .ci/run does)"
        )
    return None


@pytest.fixture(scope="session")
def image() -> str:
    """The image, built once per session from the working tree's Containerfile."""
    if (reason := _podman_missing()) is not None:
        pytest.skip(reason)
    exists = subprocess.run([PODMAN, "image", "exists", BASE], check=False, timeout=60)
    if exists.returncode != 0:
        pytest.skip(f"the base image {BASE} is missing: run .ci/setup-podman.sh")
    command = [PODMAN, "build", "--format", "docker", "--pull=never", "--network", "host"]
    command += ["--build-arg", f"BASE={BASE}", "--tag", IMAGE]
    if Path(CA_BUNDLE).is_file():
        command += ["--build-arg", f"PIP_CERT={CA_BUNDLE}", "--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    built = subprocess.run([*command, str(ROOT)], capture_output=True, text=True, check=False, timeout=900)
    assert built.returncode == 0, f"podman build failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}"
    return IMAGE


async def podman(*args: str, check: bool = True) -> tuple[int, str]:
    """Run ``podman *args`` without blocking the event loop (the fake Bot API lives in it)."""
    proc = await asyncio.create_subprocess_exec(
        PODMAN, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:  # e.g. a ``podman wait`` given up on: never leave it running
        if proc.returncode is None:
            proc.kill()
        await proc.communicate()  # reaps it and reads its pipes to the end, so both close
        raise
    code = proc.returncode if proc.returncode is not None else -1
    if check and code != 0:
        pytest.fail(f"podman {' '.join(args[:2])} exited {code}: {err.decode(errors='replace')}")
    return code, out.decode(errors="replace").strip()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_env_file(path: Path, telegram: FakeTelegram, bucket: str, moto_endpoint: str, port: int) -> Path:
    """The bot's whole configuration as an ``--env-file``, the way an operator passes it."""
    settings = {
        "TGS3BOT_TELEGRAM_TOKEN": TOKEN,
        "TGS3BOT_TELEGRAM_API_URL": telegram.base_url,
        "TGS3BOT_S3_BUCKET": bucket,
        "TGS3BOT_S3_ENDPOINT_URL": moto_endpoint,
        "TGS3BOT_S3_REGION": "us-east-1",
        "TGS3BOT_SHUTDOWN_TIMEOUT": "20",
        # Host networking: keep the metrics server on loopback, on a port no one else uses.
        "TGS3BOT_METRICS_HOST": "127.0.0.1",
        "TGS3BOT_METRICS_PORT": str(port),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()), encoding="utf-8")
    return path


async def wait_polling_or_exit(telegram: FakeTelegram, container: str) -> None:
    """Return once the container's bot polls; fail with its log if the container ends first."""
    polling = asyncio.ensure_future(
        telegram.wait_for_call(lambda c: c.method == "getUpdates", timeout=START_TIMEOUT_S)
    )
    exited = asyncio.ensure_future(podman("wait", container, check=False))
    await asyncio.wait({polling, exited}, return_when=asyncio.FIRST_COMPLETED)
    exited.cancel()
    await asyncio.gather(exited, return_exceptions=True)
    if not polling.done():
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        _, log = await podman("logs", container, check=False)
        pytest.fail(f"the container ended before polling; its log:\n{log}")
    polling.result()  # a timeout fails here, naming the calls seen


@pytest.mark.container
@pytest.mark.timeout(900)  # the first build of the session (~1 min cold here) is part of this test
async def test_the_image_saves_a_document_as_non_root_and_exits_0_on_sigterm(
    image: str, telegram: FakeTelegram, bucket: str, moto_endpoint: str, s3: Any, tmp_path: Path
) -> None:
    """The image runs `tgs3bot run` as a non-root user with its state in /data, saves a document,
    passes its HEALTHCHECK, and exits 0 on `podman stop` (SIGTERM), the update confirmed."""
    metrics_port = free_port()
    env_file = write_env_file(tmp_path / "bot.env", telegram, bucket, moto_endpoint, metrics_port)
    _, container = await podman(
        "run", "--detach", "--init", "--network", "host", "--env-file", str(env_file), image
    )
    try:
        await wait_polling_or_exit(telegram, container)
        _, ids = await podman("exec", container, "id", "-u")
        assert ids == APP_UID
        _, state = await podman("exec", container, "ls", "/data")
        assert "tgs3bot-state.sqlite3" in state.split()

        content = os.urandom(200 * 1024)
        document = telegram.add_file(content, file_name="report (final).pdf", mime_type="application/pdf")
        last_update_id = telegram.add_update(updates.message(CHAT, document=document))
        texts = await telegram.wait_for_text(CHAT, "[document has been saved]", timeout=REPLY_TIMEOUT_S)
        assert "report (final).pdf" in texts[-1]
        data, stored = await read_object(s3, bucket, "report (final).pdf")
        assert (data, stored["ContentType"]) == (content, "application/pdf")

        _, healthcheck = await podman("image", "inspect", "--format", "{{.Config.Healthcheck.Test}}", image)
        assert "/healthz" in healthcheck, "podman build --format docker keeps the HEALTHCHECK"
        code, _ = await podman("healthcheck", "run", container, check=False)
        assert code == 0, "the HEALTHCHECK (/healthz on TGS3BOT_METRICS_PORT) fails while the bot works"

        await podman("stop", "--time", str(STOP_TIMEOUT_S), container)
        _, exit_code = await podman("wait", container)
        _, log = await podman("logs", container)
        assert exit_code == "0", log
        assert str(telegram.confirmed_offset) == str(last_update_id + 1)
        assert "Traceback" not in log
        for secret in secrets_of(TOKEN):
            assert secret not in log
    finally:
        await podman("rm", "--force", "--volumes", container, check=False)


# -- compose.yaml, .env.example, the ignore files: read, not run --------------------------------------


def load_compose() -> dict[str, Any]:
    """compose.yaml as data."""
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return compose


def test_compose_has_the_bot_with_minio_and_the_redis_and_local_api_profiles() -> None:
    """Without a profile compose runs MinIO, the bucket's one-shot mc and the bot; the redis profile
    adds Redis, one poll and replicated work services; local-api adds a Bot API server whose
    directory the bot mounts read-only where local mode looks by default."""
    services = load_compose()["services"]
    by_profile: dict[str, set[str]] = {}
    for name, service in services.items():
        for profile in service.get("profiles", [""]):
            by_profile.setdefault(profile, set()).add(name)
    assert by_profile == {
        "": {"minio", "mc", "bot"},
        "redis": {"redis", "poll", "work"},
        "local-api": {"telegram-bot-api"},
    }

    bot, poll, work = services["bot"], services["poll"], services["work"]
    assert (bot["command"], poll["command"], work["command"]) == (
        ["tgs3bot", "run"],
        ["tgs3bot", "poll"],
        ["tgs3bot", "work"],
    )
    for service in (bot, poll, work):
        assert service["depends_on"]["mc"] == {"condition": "service_completed_successfully"}
        assert service["build"]["dockerfile"] == "Containerfile"
        assert service["env_file"] == ".env"
        assert service["init"] is True
    for service in (poll, work):
        assert service["environment"]["TGS3BOT_REDIS_URL"] == "redis://redis:6379/0"
        assert "redis" in service["depends_on"]
    assert "replicas" in work["deploy"]
    assert "bot-data:/data" in bot["volumes"]
    server_dir = Settings.model_fields["telegram_local_server_dir"].default
    assert f"telegram-bot-api-data:{server_dir}:ro" in bot["volumes"]
    assert f"telegram-bot-api-data:{server_dir}" in services["telegram-bot-api"]["volumes"]


def test_every_tgs3bot_variable_in_the_deploy_files_is_a_setting() -> None:
    """Each TGS3BOT_* name in compose.yaml, .env.example and the Containerfile is a real setting
    (a misspelt one would be ignored without a word), and the image's state path is in /data."""
    for name in ("compose.yaml", ".env.example", "Containerfile"):
        used = set(re.findall(r"TGS3BOT_[A-Z0-9_]+", (ROOT / name).read_text(encoding="utf-8")))
        assert used, name
        assert used <= SETTING_NAMES, f"{name}: not settings: {sorted(used - SETTING_NAMES)}"
    containerfile = (ROOT / "Containerfile").read_text(encoding="utf-8")
    assert "TGS3BOT_STATE_PATH=/data/" in containerfile
    assert 'VOLUME ["/data"]' in containerfile


def test_the_build_context_leaves_out_local_state_and_secrets() -> None:
    """.containerignore (podman) and .dockerignore (Docker) are the same and keep the venvs, tox,
    git, caches and .env files out of the build context."""
    podman_ignore = (ROOT / ".containerignore").read_text(encoding="utf-8")
    assert (ROOT / ".dockerignore").read_text(encoding="utf-8") == podman_ignore
    patterns = {line.strip() for line in podman_ignore.splitlines() if line.strip() and line[0] != "#"}
    assert {".git", ".venv", ".tox", ".env", ".mypy_cache", "**/__pycache__"} <= patterns

"""Local Bot API server mode: big files read from the server's disk, only inside its directory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import object_body

MiB = 1024 * 1024
SERVER_DIR = "/var/lib/telegram-bot-api"  # as the (fake) server sees it; the bot sees tmp_path/mount


@pytest.fixture
async def local_bot(start_bot: Any, tmp_path: Path) -> RunningBot:
    """The bot in local mode, with the server's directory mounted at tmp_path/mount."""
    (tmp_path / "mount" / "documents").mkdir(parents=True)
    bot: RunningBot = await start_bot(
        telegram_local_mode=True,
        telegram_local_server_dir=SERVER_DIR,
        telegram_local_dir=tmp_path / "mount",
    )
    return bot


def local_document(telegram: FakeTelegram, file_path: str, *, name: str, size: int) -> dict[str, Any]:
    """A document whose getFile answers ``file_path`` (an absolute path, as a --local server does)."""
    doc = telegram.add_file(b"", file_name=name, file_size=size, too_big=False)
    telegram.files[doc["file_id"]].file_path = file_path
    return doc


def document_on_disk(
    telegram: FakeTelegram, tmp_path: Path, file_name: str, data: bytes, *, name: str
) -> dict[str, Any]:
    """Write ``data`` to the server's documents directory (in the mount) and return a document for it."""
    (tmp_path / "mount" / "documents" / file_name).write_bytes(data)
    return local_document(telegram, f"{SERVER_DIR}/documents/{file_name}", name=name, size=len(data))


async def test_a_50_mib_file_is_read_from_disk_and_saved_exactly(
    local_bot: RunningBot, telegram: FakeTelegram, tmp_path: Path, s3: Any, bucket: str
) -> None:
    """The bot maps the server's path into its mount, streams the file, and stores the same bytes."""
    data = os.urandom(50 * MiB)
    doc = document_on_disk(telegram, tmp_path, "file_7.mkv", data, name="film.mkv")
    telegram.add_update(updates.message(1, document=doc))
    texts = await telegram.wait_for_text(1, "[document has been saved]", timeout=60)
    assert "film.mkv" in texts[-1].splitlines()
    stored = await object_body(s3, bucket, "film.mkv")
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    assert telegram.files[doc["file_id"]].downloads_started == 0  # read from disk, not over HTTP


async def test_files_over_2000_mb_are_refused(local_bot: RunningBot, telegram: FakeTelegram) -> None:
    """The local server's limit is 2000 MB: a bigger file is refused without asking for it."""
    doc = local_document(telegram, f"{SERVER_DIR}/documents/huge.iso", name="huge.iso", size=2_000_000_001)
    telegram.add_update(updates.message(2, document=doc))
    texts = await telegram.wait_for_text(2, "[document has not been saved]")
    assert "bigger" in texts[-1] or "at most" in texts[-1]
    assert telegram.calls_of("getFile") == []


async def test_a_getfile_too_big_refusal_names_the_local_limit(
    local_bot: RunningBot, telegram: FakeTelegram
) -> None:
    """If the local server still says "file is too big", the reason names its limit, not the cloud's."""
    doc = telegram.add_file(b"x", file_name="nosize.iso", file_size=None, too_big=True)
    telegram.add_update(updates.message(5, document=doc))
    texts = await telegram.wait_for_text(5, "[document has not been saved]")
    assert "bigger than Telegram lets bots download (1.9 GiB)" in texts[-1]


async def test_files_up_to_2000_mb_are_not_refused_for_size(
    local_bot: RunningBot, telegram: FakeTelegram, tmp_path: Path, s3: Any, bucket: str
) -> None:
    """A file over the cloud's 20 MiB but under 2000 MB is accepted in local mode."""
    data = os.urandom(21 * MiB)
    doc = document_on_disk(telegram, tmp_path, "file_8.bin", data, name="over-20.bin")
    telegram.add_update(updates.message(3, document=doc))
    await telegram.wait_for_text(3, "[document has been saved]", timeout=60)


@pytest.mark.parametrize("file_path", ["/etc/passwd", f"{SERVER_DIR}/../../etc/passwd"])
async def test_a_path_outside_the_directory_is_refused(
    local_bot: RunningBot, telegram: FakeTelegram, s3: Any, bucket: str, file_path: str
) -> None:
    """A getFile path outside the mapped directory is never read or uploaded."""
    doc = local_document(telegram, file_path, name="passwd", size=100)
    telegram.add_update(updates.message(4, document=doc))
    texts = await telegram.wait_for_text(4, "[document has not been saved]")
    assert "outside" in texts[-1]
    assert (await s3.list_objects_v2(Bucket=bucket)).get("Contents") is None

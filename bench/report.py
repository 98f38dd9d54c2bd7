"""What a benchmark reads and prints: a process's CPU and memory (from /proc), the machine and
the code it ran on, Markdown tables, medians."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process from /proc (VmRSS: now; VmHWM: the peak so far), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (``5`` into clear_refs, Linux ≥ 4.0); False if denied."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def machine() -> dict[str, str]:
    """What the figures ran on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kib / 1024 / 1024:.0f} GiB"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpu": f"{os.cpu_count()} × {model}",
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiogram": metadata.version("aiogram"),
        "aiohttp": metadata.version("aiohttp"),
        "aioboto3": metadata.version("aioboto3"),
        "moto": metadata.version("moto"),
        "load average at start": load,
    }


def src_version() -> str:
    """The commit of the checkout and a fingerprint of ``src/`` as it is on disk (others edit it too)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted((REPO_ROOT / "src").rglob("*.py")):
        digest.update(path.read_bytes())
    try:
        git = ["git", "-C", str(REPO_ROOT), "log", "-1", "--format=%h %cI"]
        commit = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"{commit}; src/*.py sha1 {digest.hexdigest()[:12]}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (readable in a terminal and pasteable into bench/README.md)."""
    cells = [[str(h) for h in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    """The median (the mean of the middle two for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

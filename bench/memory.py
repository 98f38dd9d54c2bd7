"""Memory of the whole bot process while it saves documents: idle RSS, peak RSS, and the growth.

Run: ``python -m bench.memory [--sizes-mib 15 60] [--parallel 1]``
Each size is one bot process: idle RSS is read once it polls (and has handled a greeting), peak
RSS (VmHWM) after the saves, so the growth is what the transfers cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from tests.fakes import updates

from bench.harness import rig, rss_kib

MiB = 1024 * 1024


async def measure(size_mib: int, parallel: int) -> tuple[int, int, float]:
    with tempfile.TemporaryDirectory() as workdir:
        async with rig(Path(workdir)) as r:
            chats = list(range(1, parallel + 1))
            r.telegram.add_updates([updates.message(c, text="/start") for c in chats])
            for chat in chats:
                await r.telegram.wait_for_text(chat, "[greeting]")
            idle = rss_kib(r.process.pid)
            content = os.urandom(size_mib * MiB)
            docs = [r.telegram.add_file(content, file_name=f"file-{c}.bin") for c in chats]
            started = time.perf_counter()
            r.telegram.add_updates([updates.message(c, document=d) for c, d in zip(chats, docs, strict=True)])
            for chat in chats:
                await r.telegram.wait_for_text(chat, "[document has been saved]", timeout=300)
            elapsed = time.perf_counter() - started
            peak = rss_kib(r.process.pid, "VmHWM")
            return idle, peak, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[15])
    parser.add_argument("--parallel", type=int, default=1, help="chats sending one file each at once")
    args = parser.parse_args()
    header = ("file MiB", "files", "idle RSS MiB", "peak RSS MiB", "growth MiB", "seconds")
    print(" ".join(f"{h:>12}" for h in header))
    for size in args.sizes_mib:
        idle, peak, elapsed = await measure(size, args.parallel)
        row = (size, args.parallel, f"{idle / 1024:.1f}", f"{peak / 1024:.1f}", f"{(peak - idle) / 1024:.1f}")
        print(" ".join(f"{v:>12}" for v in (*row, f"{elapsed:.2f}")))


if __name__ == "__main__":
    asyncio.run(main())

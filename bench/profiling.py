"""Where a contestant's time goes in the text pipeline: py-spy attached for the timed window only.

``python -m bench --only profile`` runs one text-pipeline run of tgs3bot (or ``--contestant``)
with ``py-spy record --format raw`` attached from just before the injection to the last reply,
then prints the share of samples (inclusive: a frame anywhere on the stack) for the costs that
matter — model parsing, JSON, logging, SQLite round trips, HTTP — and the top frames by self time.
The collapsed stacks are kept (``--keep``) for flame-graph tools (speedscope, inferno).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram

from bench import documents
from bench.harness import S3, Contestant, ContestantFactory, ReplyCounter, fresh_telegram, run_dir, running
from bench.report import table
from bench.text import workload

PY_SPY_RATE_HZ = 250

# (label, substrings of a frame "function (file:line)"): a main-thread sample counts towards a
# group if any frame of its stack matches (inclusive, so groups may overlap a little).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aiogram: parse answers (Response[...] model_validate)", ("BaseSession.check_response",)),
    ("  of which pydantic rebuilds Response[T] (weak generic cache)", ("create_generic_submodel",)),
    ("aiogram: build requests (model_dump, prepare_value)", ("build_form_data", "prepare_value")),
    ("aiohttp client: request and response", ("ClientSession._request", "ClientResponse.")),
    ("asyncio transports (socket reads, writes)", ("asyncio/selector_events.py",)),
    ("botocore / aiobotocore (S3 calls)", ("_make_api_call",)),
    ("  of which SigV4 SHA-256 of the body (plain-http endpoint)", ("SigV4Auth.payload",)),
    ("tgs3bot: state (SQLite via aiosqlite)", ("tgs3bot/state/",)),
    ("tgs3bot: upload parts (PartReader)", ("PartReader.read",)),
    ("tgs3bot: S3 name check (head_object)", ("S3Storage.head",)),
    ("tgs3bot: poller (getUpdates, to_event)", ("Poller.run",)),
    ("tgs3bot: router predicates", ("Router.route_for",)),
    ("structlog / logging", ("structlog/", "logging/__init__.py")),
)


@dataclass
class Profile:
    """Collapsed stacks of one run: ``stacks[stack] = samples``; the thread is the first frame."""

    stacks: Counter[str]
    seconds: float

    @classmethod
    def read(cls, path: Path, seconds: float) -> Profile:
        stacks: Counter[str] = Counter()
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                stacks[stack] += int(count)
        return cls(stacks, seconds)

    def busy(self) -> Counter[str]:
        """The event-loop thread's samples not waiting in the selector (py-spy here records idle too)."""
        return Counter(
            {
                s: n
                for s, n in self.stacks.items()
                if "MainThread" in s.split(";", 1)[0] and not _leaf(s).startswith("EpollSelector.select")
            }
        )

    def aiosqlite_busy(self) -> int:
        """Samples of aiosqlite's thread not waiting for work."""
        return sum(
            n
            for s, n in self.stacks.items()
            if "_connection_worker_thread" in s.split(";", 1)[0] and "core.py:59)" not in _leaf(s)
        )


def _leaf(stack: str) -> str:
    return stack.rsplit(";", 1)[-1]


class Workload(Protocol):
    """What a profiled run does: ``prepare`` (untimed, unprofiled), then ``go`` (timed and profiled)."""

    async def prepare(self, telegram: FakeTelegram, contestant: Contestant) -> None: ...

    async def go(self, telegram: FakeTelegram) -> None: ...


@dataclass
class TextWorkload:
    """The text pipeline's injection (``chats`` x ``per_chat`` texts) and its 100 % check."""

    chats: int = 400
    per_chat: int = 10

    async def prepare(self, telegram: FakeTelegram, contestant: Contestant) -> None:
        return None

    async def go(self, telegram: FakeTelegram) -> None:
        counter = ReplyCounter(telegram)
        telegram.add_updates(workload(self.chats, self.per_chat))
        await counter.wait(self.chats * self.per_chat, timeout_s=600)


@dataclass
class DocumentWorkload:
    """``chats`` greeted chats sending one document of ``size_mib`` each at once."""

    chats: int = 100
    size_mib: int = 4

    async def prepare(self, telegram: FakeTelegram, contestant: Contestant) -> None:
        self._ids = list(range(1, self.chats + 1))
        if contestant.greets:
            await documents.greet(telegram, self._ids)
        content = documents.random_content(self.size_mib)
        self._docs = [telegram.add_file(content, file_name=f"doc-{c}.bin") for c in self._ids]

    async def go(self, telegram: FakeTelegram) -> None:
        counter = ReplyCounter(telegram, documents.SAVED)
        telegram.add_updates(
            [updates.message(c, document=d) for c, d in zip(self._ids, self._docs, strict=True)]
        )
        await counter.wait(self.chats, timeout_s=600)


async def record(make: ContestantFactory, s3: S3, workdir: Path, load: Workload) -> Profile:
    """One run of ``load`` with py-spy attached to the contestant for the timed window."""
    py_spy = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
    workdir = run_dir(workdir, "profile")
    out = workdir / "profile.txt"
    async with fresh_telegram() as telegram:
        contestant = make(telegram.base_url, s3, workdir)
        async with running(contestant, telegram, workdir) as process:
            await load.prepare(telegram, contestant)  # before py-spy attaches: not profiled
            spy = await asyncio.create_subprocess_exec(
                py_spy, "record", "--pid", str(process.pid), "--rate", str(PY_SPY_RATE_HZ),
                "--format", "raw", "--threads", "--output", str(out),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(1.0)  # py-spy attaches
            started = time.monotonic()
            await load.go(telegram)
            finished = time.monotonic()
            spy.send_signal(signal.SIGINT)
            await spy.wait()
    await s3.empty_bucket()
    return Profile.read(out, finished - started)


def report(profile: Profile, name: str) -> str:
    """Shares of the event loop's busy time by group, then the top frames by self time."""
    busy = profile.busy()
    total = max(sum(busy.values()), 1)
    seconds = total / PY_SPY_RATE_HZ
    lines = [
        f"{name}: {profile.seconds:.2f} s under py-spy ({PY_SPY_RATE_HZ} Hz; it slows the bot a little); "
        f"event loop busy {seconds:.2f} s, aiosqlite's thread busy "
        f"{profile.aiosqlite_busy() / PY_SPY_RATE_HZ:.2f} s",
        "",
    ]
    rows = []
    for label, needles in GROUPS:
        n = sum(v for s, v in busy.items() if any(k in s for k in needles))
        if n:
            rows.append((label, n, f"{100 * n / total:.1f} %"))
    lines.append(table(("event-loop thread, inclusive", "samples", "% of busy"), rows))
    lines.append("")
    leaves: Counter[str] = Counter()
    for stack, n in busy.items():
        leaves[_leaf(stack)] += n
    top = [(frame[:100], n, f"{100 * n / total:.1f} %") for frame, n in leaves.most_common(12)]
    lines.append(table(("top frames by self time", "samples", "% of busy"), top))
    return "\n".join(lines)

"""What-if variants of tgs3bot: the real ``tgs3bot run`` with one cost changed by a patch at start-up.

They exist to measure what a proposed change to ``src/`` would gain before anyone makes it (the
bench never edits ``src/``). Run as ``python bench/variants.py NAME[,NAME…] run``; each NAME is a
key of ``VARIANTS``:

- ``memstate``: ``MemoryState`` instead of the SQLite file, and the queue's journal in memory
  (the upper bound of any state fix);
- ``memjournal``: the SQLite state as usual, but the queue's journal in memory: what the durable
  journal (SPEC §5) costs, measured in one run;
- ``sidethread``: ``memjournal`` plus ~0.14 ms of GIL-free work per poll batch on a helper thread
  (a SHA-256 of 250 kB), about what the SQLite journal's thread does per batch: whether the cost
  is SQLite's work or having a thread work beside the event loop at all;

Earlier variants (SQLite reads from memory, batched handled marks, a dialog cache, a level filter
before structlog's processors, orjson for aiogram's session, kept ``Response[T]`` classes, a slim
sendMessage answer, presized parts, no ``head_object`` before a save, glibc's mmap threshold)
were measured here; what they found is in ``src/`` or in bench/README.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _memstate() -> None:
    import tgs3bot.backends
    from tgs3bot.state import MemoryState

    setattr(tgs3bot.backends, "SqliteState", lambda _path: MemoryState())  # noqa: B010 (a patch mypy need not check)
    _memjournal()  # backends picks the journal by the state's type


def _memjournal() -> None:
    import tgs3bot.backends
    from tgs3bot.queues.journal import MemoryJournal

    setattr(tgs3bot.backends, "_journal", lambda _state: MemoryJournal())  # noqa: B010


def _sidethread() -> None:
    """The journal in memory, plus ~0.14 ms of GIL-free work (a SHA-256) per batch on a helper thread."""
    import asyncio
    import hashlib
    from collections.abc import Sequence

    import tgs3bot.backends
    from tgs3bot.events import Event
    from tgs3bot.queues.journal import MemoryJournal

    data = b"x" * 250_000  # over hashlib's 2 KiB threshold: hashed without the GIL

    class SideThreadJournal(MemoryJournal):
        async def append(self, events: Sequence[Event]) -> list[tuple[int, Event]]:
            await asyncio.get_running_loop().run_in_executor(None, hashlib.sha256, data)
            return await super().append(events)

    setattr(tgs3bot.backends, "_journal", lambda _state: SideThreadJournal())  # noqa: B010


VARIANTS: dict[str, Callable[[], None]] = {
    "memstate": _memstate,
    "memjournal": _memjournal,
    "sidethread": _sidethread,
}


if __name__ == "__main__":
    for variant in sys.argv[1].split(","):
        VARIANTS[variant]()
    from tgs3bot.cli import main

    sys.exit(main(sys.argv[2:]))

"""What-if variants of tgs3bot: the real ``tgs3bot run`` with one cost changed by a patch at start-up.

They exist to measure what a proposed change to ``src/`` would gain before anyone makes it (the
bench never edits ``src/``). Run as ``python bench/variants.py NAME[,NAME…] run``; each NAME is a
key of ``VARIANTS``:

- ``memstate``: ``MemoryState`` instead of the SQLite file (the upper bound of any state fix);

Earlier variants (SQLite reads from memory, batched handled marks, a dialog cache, a level filter
before structlog's processors, orjson for aiogram's session, kept ``Response[T]`` classes, a slim
sendMessage answer, presized parts, no ``head_object`` before a save, glibc's mmap threshold)
were measured here; what they found is in ``src/`` or in bench/README.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _memstate() -> None:
    import tgs3bot.app
    from tgs3bot.state import MemoryState

    setattr(tgs3bot.app, "SqliteState", lambda _path: MemoryState())  # noqa: B010 (a patch mypy need not check)


VARIANTS: dict[str, Callable[[], None]] = {
    "memstate": _memstate,
}


if __name__ == "__main__":
    for variant in sys.argv[1].split(","):
        VARIANTS[variant]()
    from tgs3bot.cli import main

    sys.exit(main(sys.argv[2:]))

"""``python -m tgs3bot`` is the same as the ``tgs3bot`` command."""

from tgs3bot.cli import main

raise SystemExit(main())

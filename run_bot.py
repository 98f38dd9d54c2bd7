"""Run the bot: ``python3 run_bot.py`` is ``tgs3bot run`` (flags are passed on)."""

import sys

from tgs3bot.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))

"""What the bot remembers, behind ``interfaces.StateStore``: one module per backend."""

from tgs3bot.state.memory import MemoryState
from tgs3bot.state.sqlite import SqliteState

__all__ = ["MemoryState", "SqliteState"]

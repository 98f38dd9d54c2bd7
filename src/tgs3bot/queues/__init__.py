"""Where the poller leaves updates for the workers, behind ``interfaces.UpdateQueue``."""

from tgs3bot.queues.memory import ChatQueue

__all__ = ["ChatQueue"]

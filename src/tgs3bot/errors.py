"""The bot's exception tree.

Platform adapters translate their client's exceptions into these, so the poller, the worker and
the handlers never import a platform library's errors.
"""

from __future__ import annotations


class Tgs3botError(Exception):
    """Base of every error the bot raises on purpose."""


class StartupError(Tgs3botError):
    """The bot cannot start (bad token, missing bucket, bad settings); the text is for the operator."""


class FatalPollingError(Tgs3botError):
    """Polling cannot go on (token revoked, another instance polling); the process must exit."""


class LeaseLost(Tgs3botError):
    """The poller lease is not (or no longer) held by this process: it must stop polling."""


class PlatformError(Tgs3botError):
    """A call to the messaging platform failed."""


class RetryAfter(PlatformError):
    """The platform asks us to wait ``retry_after_s`` seconds before calling again."""

    def __init__(self, retry_after_s: float, message: str = "") -> None:
        super().__init__(message or f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class TransientError(PlatformError):
    """A network failure, a timeout or a 5xx: worth retrying after a backoff."""


class Unauthorized(PlatformError):
    """The platform rejected the token."""


class Conflict(PlatformError):
    """Another client polls with the same token (Telegram's 409)."""


class Undeliverable(PlatformError):
    """The message can never be delivered (the user blocked the bot, the chat is gone)."""


class FileUnavailable(PlatformError):
    """The platform refuses to hand out a file; ``reason`` is in plain words for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransferError(Tgs3botError):
    """A document could not be saved; ``reason`` is in plain words for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

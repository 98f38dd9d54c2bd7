"""What an S3 error means for the bot: its code, and the reason a user is given."""

from __future__ import annotations

from botocore.exceptions import ClientError

from tgs3bot import metrics
from tgs3bot.errors import TransferError

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
PRECONDITION_FAILED = frozenset({"PreconditionFailed", "412"})  # a conditional write refused


def error_code(exc: ClientError) -> str:
    """The S3 error code (``AccessDenied``, ``PreconditionFailed``…), or the HTTP status for a HEAD."""
    return str(exc.response.get("Error", {}).get("Code", "error"))


def storage_reason(exc: Exception) -> str:
    """The reason a save failed, in words a user can read (never the error's text)."""
    metrics.s3_error(exc)  # every S3 failure that becomes a TransferError passes here
    if isinstance(exc, ClientError):
        return f"the storage refused the file ({error_code(exc)})"
    return "the storage could not be reached"


def raise_unless_missing(exc: Exception) -> None:
    """Raise the ``TransferError`` a failed S3 call means, unless it only says the object is not
    there (then return: the caller answers None)."""
    if isinstance(exc, ClientError) and error_code(exc) in NOT_FOUND:
        return
    raise TransferError(storage_reason(exc)) from exc

"""Every text the bot sends. The bracketed markers are an interface: external test suites match them.

Replies are plain text (no parse_mode), so file names never need escaping.
"""

from __future__ import annotations

from tgs3bot.utils import human_size

GREETING = (
    "[greeting] Hi! Send me a file as a document (📎 → File) and I will save it to the bucket "
    "under its own name."
)
DOCUMENT_REQUIRED = (
    "[document is required] Send a file as a document. Photos, stickers, voice and video messages "
    "are not documents: to save a picture, send it as a file."
)
ACCESS_DENIED = "[access denied] This bot is private; ask its operator to add your user id."
INTERNAL_ERROR = "Something went wrong on our side while handling that message; please try again."
RESTARTING = "the bot is restarting; send the file again in a minute"


def document_received(name: str) -> str:
    """The immediate answer to a document."""
    return f"[document] Got «{name}». Saving it…"


def document_saved(key: str, size: int, *, replaced: bool, note: str | None) -> str:
    """The answer once the object is in the bucket; the key is given verbatim on its own line."""
    lines = [f"[document has been saved] {human_size(size)}, saved as:", key]
    if replaced:
        lines.append("It replaced the earlier file of the same name.")
    if note:
        lines.append(note)
    return "\n".join(lines)


def document_not_saved(reason: str) -> str:
    """The answer when a document could not be saved, with the reason in plain words."""
    return f"[document has not been saved] {reason[:1].upper()}{reason[1:]}."

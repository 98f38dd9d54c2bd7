"""Every text the bot sends. The bracketed markers are an interface: external test suites match them.

Replies are plain text (no parse_mode), so file names never need escaping.
"""

from __future__ import annotations

import time

from tgs3bot.utils import human_duration, human_size

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
RESTARTING = "the bot is restarting; it will save the file when it is back, no need to send it again"

# Why Telegram did not hand out a file: a fixed phrase for each kind of failure, never an error's
# own text (aiohttp's texts carry the request URL, and the bot token in it; the log has the detail).
FILE_REFUSED = "Telegram refused to hand out the file"
FILE_NETWORK_TROUBLE = (
    "Telegram could not be reached to hand out the file (network trouble); send it again later"
)
FILE_WITHOUT_PATH = "Telegram did not give a download path for the file"


def download_not_started(source: str) -> str:
    """The reason when the download from ``source`` (Telegram, VK) cannot start."""
    return f"the download from {source} could not start (network trouble); send it again later"


def download_broke_off(source: str) -> str:
    """The reason when the download from ``source`` (Telegram, VK) ends before the file does."""
    return f"the download from {source} broke off"


DOWNLOAD_NOT_STARTED = download_not_started("Telegram")
DOWNLOAD_BROKE_OFF = download_broke_off("Telegram")


def file_too_big(limit: int) -> str:
    """The reason for a file over the Bot API's download limit (``limit`` in bytes)."""
    return f"the file is bigger than Telegram lets bots download ({human_size(limit)})"


def download_failed(status: int, source: str = "Telegram") -> str:
    """The reason for a download answered with an HTTP error (an error page is never stored)."""
    return f"the download from {source} failed (HTTP {status})"


def apology(*, document: bool) -> str:
    """The answer to an update whose handling failed unexpectedly; a document's names the outcome."""
    if document:
        return document_not_saved("something went wrong on our side while handling it; please send it again")
    return INTERNAL_ERROR


def document_received(name: str) -> str:
    """The immediate answer to a document."""
    return f"[document] Got «{name}». Saving it…"


def document_saved(key: str, size: int, *, replaced: bool, note: str | None, already: bool = False) -> str:
    """The answer once the object is in the bucket; the key is given verbatim on its own line.

    ``already``: the bucket held this very file under that key, and nothing was written.
    """
    if already:
        lines = [f"[document has been saved] {human_size(size)}, already in the bucket as:", key]
        lines.append("This very file was saved under this name before, so it was not downloaded again.")
    else:
        lines = [f"[document has been saved] {human_size(size)}, saved as:", key]
    if replaced:
        lines.append("It replaced the earlier file of the same name.")
    if note:
        lines.append(note)
    return "\n".join(lines)


def document_not_saved(reason: str) -> str:
    """The answer when a document could not be saved, with the reason in plain words."""
    return f"[document has not been saved] {reason[:1].upper()}{reason[1:]}."


RENAME_BUTTON = "✏️ Rename"
KEEP_BUTTON = "Keep this name"
LINK_BUTTON = "🔗 Link"
LINK_STALE = "This file is no longer known (renamed away or deleted); send /files again."
LINK_FILE_GONE = "This file is no longer in the bucket; send /files again."
LINK_NOT_YOURS = "You can get links only to the files you saved."
HELP = (
    "I save the files you send me as documents into an S3 bucket, under their own names.\n"
    "\n"
    "• Send a file as a document (📎 → File); photos sent as photos are not files.\n"
    "• After a save, press “Rename” to give the file another name, or “🔗 Link” for a download "
    "link that expires.\n"
    "/files: the files you saved, newest first\n"
    "/cancel: stop renaming\n"
    "/help: this message"
)
COMMANDS = (
    ("start", "start the bot"),
    ("help", "what this bot does"),
    ("files", "list the saved files"),
    ("cancel", "stop renaming"),
)
NOTHING_TO_CANCEL = "There is nothing to cancel."
NO_FILES = "No saved files yet. Send me a file as a document."
FILES_BUTTON_STALE = "This list is out of date; send /files again."


def rename_prompt(key: str) -> str:
    """The question the rename dialog asks."""
    return f"Send the new name for «{key}», or /cancel to keep it."


def rename_cancelled(key: str) -> str:
    """The answer to /cancel during a rename."""
    return f"Cancelled: «{key}» keeps its name."


def rename_expired(key: str) -> str:
    """The answer to a name sent after the rename dialog expired."""
    return f"The rename of «{key}» expired. Press “Rename” under the file again."


def document_renamed(old_key: str, new_key: str, *, note: str | None) -> str:
    """The answer once the object moved; the new key verbatim on its own line."""
    lines = [f"[document has been renamed] «{old_key}» is now:", new_key]
    if note:
        lines.append(note)
    return "\n".join(lines)


def document_not_renamed(reason: str) -> str:
    """The answer when a rename is refused or fails, with the reason."""
    return f"[document has not been renamed] {reason[:1].upper()}{reason[1:]}."


def rename_refused_ask_again(reason: str) -> str:
    """The answer to a refused new name; the question stays open."""
    return f"{document_not_renamed(reason)} Send another name or /cancel."


def share_link(key: str, url: str, *, expires_at: float, ttl_s: int) -> str:
    """The answer to a Link button: the download link and when it stops working."""
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires_at))
    return f"🔗 Download link for «{key}», valid until {until} ({human_duration(ttl_s)}):\n{url}"


def link_failed(reason: str) -> str:
    """The answer when a link could not be made (the bucket could not be asked)."""
    return f"No link for now: {reason}. Try again in a moment."

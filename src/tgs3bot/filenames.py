"""Object keys from Telegram file names: kept exactly as given unless unsafe, then made safe.

The rule (the README repeats it):

1. ``/`` and ``\\`` separate nothing: the name is split on them, empty, ``.`` and ``..`` parts are
   dropped, and the rest is joined with ``_`` — so every key is one name at the bucket root.
2. Control characters (Unicode category Cc, and the line/paragraph separators) and format
   characters (category Cf: bidi overrides and isolates, zero-width spaces and joiners, the BOM,
   the soft hyphen) are dropped, and the rest is NFC-normalised. Format characters are invisible
   and can make a name display as another (``invoice\u202efdp.exe`` shows as ``invoiceexe.pdf``).
3. A key longer than S3's 1024 UTF-8 bytes is shortened in its stem; the extension is kept.
4. A missing name, or one that is empty after 1 to 3, gets a generated name
   ``document-<file_unique_id><extension from the MIME type>``.

Anything else (Unicode, spaces, brackets, quotes) is kept verbatim.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

MAX_KEY_BYTES = 1024  # S3's limit for an object key
MAX_EXTENSION_BYTES = 32
_SEPARATORS = re.compile(r"[/\\]")


@dataclass(frozen=True, slots=True)
class SafeName:
    """The key to use and how it came about."""

    key: str
    generated: bool = False  # there was no usable name
    changed: bool = False  # the name was made safe, so the key differs from it


def _is_unsafe_char(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf") or char in "\u2028\u2029"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")[:max_bytes]
    return encoded.decode("utf-8", errors="ignore")  # drops a character cut in half


def _fit(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_KEY_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode("utf-8")) > MAX_EXTENSION_BYTES:
        return _truncate_utf8(name, MAX_KEY_BYTES)
    suffix = "." + ext
    return _truncate_utf8(stem, MAX_KEY_BYTES - len(suffix.encode("utf-8"))) + suffix


def display_name(name: str) -> str:
    """The name as given, without the characters that could hide or disguise part of it (rule 2)."""
    return "".join(char for char in name if not _is_unsafe_char(char))


def clean_name(name: str) -> str:
    """The name made safe by rules 1 to 3; may be empty."""
    # Drop first, then compose: a dropped character may have sat between a letter and its accent.
    visible = unicodedata.normalize("NFC", "".join(c for c in name if not _is_unsafe_char(c)))
    parts = [p for p in _SEPARATORS.split(visible) if p not in ("", ".", "..")]
    return _fit("_".join(parts))


def generated_name(file_unique_id: str, mime_type: str | None) -> str:
    """A name for a document that has none: stable for the same file, with a fitting extension."""
    extension = (mimetypes.guess_extension(mime_type) if mime_type else None) or ".bin"
    return f"document-{clean_name(file_unique_id) or 'file'}{extension}"


def safe_key(file_name: str | None, *, file_unique_id: str, mime_type: str | None) -> SafeName:
    """The root-level object key for a document, per the module's rule."""
    if file_name:
        cleaned = clean_name(file_name)
        if cleaned:
            return SafeName(key=cleaned, changed=cleaned != file_name)
    return SafeName(key=generated_name(file_unique_id, mime_type), generated=True)


def content_disposition(key: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / RFC 5987)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\%' else "_" for c in key)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(key, safe='')}"

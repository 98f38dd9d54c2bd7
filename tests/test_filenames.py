"""File names become safe root-level keys; safe names are kept verbatim."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tgs3bot.filenames import MAX_KEY_BYTES, content_disposition, safe_key


def key(name: str | None, mime: str | None = None) -> str:
    return safe_key(name, file_unique_id="AgADuniq", mime_type=mime).key


@pytest.mark.parametrize(
    "name",
    ["report.pdf", "Отчёт за 2026 [final] (копия).docx", "with  spaces .txt", "emoji 📎.bin", "a..b.txt"],
)
def test_safe_names_are_kept_verbatim(name: str) -> None:
    """Unicode, spaces, brackets and inner dots are kept exactly as Telegram gave them."""
    result = safe_key(name, file_unique_id="u", mime_type=None)
    assert (result.key, result.changed, result.generated) == (name, False, False)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "etc_passwd"),
        ("a/b/c.txt", "a_b_c.txt"),
        ("/abs.txt", "abs.txt"),
        ("dir\\win.txt", "dir_win.txt"),
        ("./x/./y", "x_y"),
        ("tab\there\x00\x1f\x7f.txt", "tabhere.txt"),
        ("line\u2028break.txt", "linebreak.txt"),
    ],
)
def test_unsafe_names_become_one_root_level_key(name: str, expected: str) -> None:
    """Separators, dot segments and control characters never make a nested or escaping key."""
    result = safe_key(name, file_unique_id="u", mime_type=None)
    assert result.key == expected
    assert result.changed
    assert "/" not in result.key and "\\" not in result.key


@pytest.mark.parametrize("name", [None, "", "..", "/", "\x00", "./../"])
def test_missing_or_empty_names_are_generated(name: str | None) -> None:
    """A document without a usable name gets a generated one with an extension from its MIME type."""
    result = safe_key(name, file_unique_id="AgADuniq", mime_type="application/pdf")
    assert result.generated
    assert result.key == "document-AgADuniq.pdf"


def test_generated_name_without_mime_type_is_bin() -> None:
    """Without a MIME type the generated name ends in .bin."""
    assert key(None) == "document-AgADuniq.bin"


def test_long_names_are_cut_to_1024_utf8_bytes_keeping_the_extension() -> None:
    """A name over S3's 1024-byte limit keeps its extension and never splits a character."""
    name = "я" * 700 + ".pdf"  # 1404 bytes
    result = key(name)
    assert len(result.encode("utf-8")) <= MAX_KEY_BYTES
    assert result.endswith(".pdf")
    assert result.startswith("я" * 500)
    assert key("x" * 1024) == "x" * 1024


def test_content_disposition_keeps_the_unicode_name() -> None:
    """Content-Disposition is ASCII, with the exact UTF-8 name in filename* (RFC 5987)."""
    name = 'Отчёт "1" 100%.pdf'
    header = content_disposition(name)
    assert header.isascii()
    assert header.startswith('attachment; filename="')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # RIGHT-TO-LEFT OVERRIDE: shows as invoiceexe.pdf
        ("a\u2066b\u2069\u200e\u200f.txt", "ab.txt"),  # isolates and direction marks
        ("\ufeffbom.txt", "bom.txt"),
        ("pay\u200bpal\u200c\u200d\u2060.pdf", "paypal.pdf"),  # zero-width space, (non-)joiner, word joiner
        ("soft\u00adhyphen.txt", "softhyphen.txt"),
    ],
)
def test_invisible_format_characters_are_dropped(name: str, expected: str) -> None:
    """Format characters (bidi overrides, zero-width, BOM) cannot make a key look like another name."""
    result = safe_key(name, file_unique_id="u", mime_type=None)
    assert (result.key, result.changed, result.generated) == (expected, True, False)


def test_names_are_nfc_normalised() -> None:
    """A decomposed name (e + combining acute) is stored composed, and the user is told it changed."""
    result = safe_key("Cafe\u0301.txt", file_unique_id="u", mime_type=None)
    assert (result.key, result.changed) == ("Caf\u00e9.txt", True)


def test_dropping_a_format_character_then_composes() -> None:
    """An accent separated from its letter only by an invisible character is composed with it."""
    assert key("e\u200b\u0301.txt") == "\u00e9.txt"


def test_a_name_of_format_characters_only_is_generated() -> None:
    """A name that is nothing but invisible characters gets a generated name."""
    assert safe_key("\u202e\u200b", file_unique_id="AgADuniq", mime_type=None).generated

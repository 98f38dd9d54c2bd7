"""The file-name rule through the bot: what a look-alike name is saved as, and what the user is told."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import greet, object_keys

pytestmark = pytest.mark.usefixtures("bot")


async def test_a_bidi_override_in_a_name_is_dropped_and_the_user_told(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """`invoice\\u202efdp.exe` (shown as invoiceexe.pdf) is saved as invoicefdp.exe, and the reply says so."""
    await greet(telegram, 1)
    doc = telegram.add_file(b"MZ", file_name="invoice\u202efdp.exe", mime_type="application/octet-stream")
    telegram.add_update(updates.message(1, document=doc))
    texts = await telegram.wait_for_text(1, "[document has been saved]")
    saved = texts[-1].splitlines()
    assert saved[1] == "invoicefdp.exe"  # the key, verbatim, on its own line
    assert any("made safe" in line for line in saved[2:]), texts[-1]
    assert await object_keys(s3, bucket) == ["invoicefdp.exe"]
    assert not any("\u202e" in text for text in texts)  # not even the [document] echo shows it

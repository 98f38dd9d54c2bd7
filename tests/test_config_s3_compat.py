"""TGS3BOT_S3_CONDITIONAL_WRITES (``--s3-conditional-writes``): auto, or a boolean word.

What the setting does to a store is in ``test_s3_compat.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from tgs3bot.cli import build_parser
from tgs3bot.config import Settings

TOKEN = "123456789:AAFakeTokenForTestsOnly-abcdefghijkl"


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, telegram_token=SecretStr(TOKEN), s3_bucket="docs", **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        *[("auto", "auto"), (" AUTO ", "auto"), ("true", True), ("True", True), ("1", True), ("yes", True)],
        *[("false", False), ("FALSE", False), ("0", False), ("off", False), (True, True), (False, False)],
    ],
)
def test_the_setting_reads_auto_true_or_false(raw: Any, parsed: Any) -> None:
    """TGS3BOT_S3_CONDITIONAL_WRITES takes auto or a boolean word, in any case."""
    assert _settings(s3_conditional_writes=raw).s3_conditional_writes == parsed


def test_the_setting_defaults_to_auto_and_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset means auto (probe); the environment variable is read like any other setting."""
    monkeypatch.delenv("TGS3BOT_S3_CONDITIONAL_WRITES", raising=False)
    assert _settings().s3_conditional_writes == "auto"
    monkeypatch.setenv("TGS3BOT_S3_CONDITIONAL_WRITES", "false")
    assert _settings().s3_conditional_writes is False


@pytest.mark.parametrize("raw", ["maybe", "", "2"])
def test_any_other_value_is_one_clear_error(raw: str) -> None:
    """A value that is neither auto nor a boolean is refused with one error naming the choices."""
    with pytest.raises(ValidationError) as caught:
        _settings(s3_conditional_writes=raw)
    [error] = caught.value.errors()
    assert error["loc"] == ("s3_conditional_writes",)
    assert "must be auto, true or false" in error["msg"]


def test_the_flag_takes_a_value() -> None:
    """``--s3-conditional-writes false`` on the command line, like the variable."""
    args = build_parser().parse_args(["run", "--s3-conditional-writes", "false"])
    assert _settings(s3_conditional_writes=args.s3_conditional_writes).s3_conditional_writes is False

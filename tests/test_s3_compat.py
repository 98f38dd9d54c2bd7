"""Stores that ignore If-None-Match: the start-up probe and the check-first fallback.

moto's S3 server honours ``If-None-Match: *``; behind ``S3Proxy`` (which drops the header) it acts
like a store that ignores it (an old MinIO, several S3-compatible services). The proxy records
every request, so a test sees whether the probe was made. The end-to-end tests run the real
``tgs3bot run`` process, as an operator would.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

from tests.fakes import updates
from tests.fakes.s3proxy import S3Proxy
from tests.fakes.telegram import FakeTelegram
from tests.helpers import object_keys, read_object, to_chat
from tests.processes import REPLY_TIMEOUT_S, BotProcess, Launch, bot_env, launch, wait_polling
from tgs3bot.errors import TransferError
from tgs3bot.storage import PROBE_PREFIX, S3Storage
from tgs3bot.storage.base import ObjectInfo, StoredObject

__all__ = ["launch"]  # the fixture, used by the end-to-end tests below

INFO = ObjectInfo(content_type="text/plain", content_disposition="attachment", metadata={"user-id": "1"})
FIRST_USER, SECOND_USER = 501, 502
NAME = "report.pdf"
# The refusal users got before this change, word for word: it must not differ in any mode.
TAKEN = (
    f"[document has not been saved] The name «{NAME}» is taken by a file someone else saved; "
    "rename your file and send it again."
)


# -- the probe and the fallback, on S3Storage ------------------------------------------------------


@pytest.fixture
async def ignoring(moto_endpoint: str) -> AsyncIterator[S3Proxy]:
    """moto behind a proxy that drops If-None-Match: a store that ignores conditional writes."""
    async with S3Proxy(moto_endpoint, drop_if_none_match=True) as proxy:
        yield proxy


@pytest.fixture
async def honouring(moto_endpoint: str) -> AsyncIterator[S3Proxy]:
    """moto behind a proxy that forwards everything as it is: it only counts the requests."""
    async with S3Proxy(moto_endpoint, drop_if_none_match=False) as proxy:
        yield proxy


def _storage(endpoint: str, bucket: str, conditional_writes: Any = "auto") -> S3Storage:
    return S3Storage(bucket, endpoint_url=endpoint, region="us-east-1", conditional_writes=conditional_writes)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _refuse(existing: StoredObject) -> None:
    raise TransferError(f"taken by {existing.metadata.get('user-id')}")


async def _probe_leftovers(s3: Any, bucket: str) -> list[Any]:
    """Every object version and delete marker under the probe prefix."""
    answer = await s3.list_object_versions(Bucket=bucket, Prefix=PROBE_PREFIX)
    return [*answer.get("Versions", []), *answer.get("DeleteMarkers", [])]


def _methods(proxy: S3Proxy, prefix: str) -> list[str]:
    return [r.method for r in proxy.requests_under(prefix)]


async def test_behind_the_proxy_moto_ignores_if_none_match(ignoring: S3Proxy, s3: Any, bucket: str) -> None:
    """The premise of the fallback tests: through the proxy a second conditional put is accepted."""
    async with _storage(ignoring.url, bucket, True) as storage:
        await storage.client.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
        await storage.client.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    data, _ = await read_object(s3, bucket, "k")
    assert data == b"second"
    assert [r.if_none_match for r in ignoring.requests_under("k")] == ["*", "*"]


async def test_the_probe_finds_conditional_writes_on_moto_and_cleans_up(
    honouring: S3Proxy, s3: Any, bucket: str
) -> None:
    """Two conditional puts of one random key, the second refused, then one delete: nothing is left."""
    async with _storage(honouring.url, bucket) as storage:
        assert storage.conditional_writes is False  # "auto" checks first until the probe says otherwise
        with structlog.testing.capture_logs() as logs:
            assert await storage.check_conditional_writes() is True
    assert _methods(honouring, PROBE_PREFIX) == ["PUT", "PUT", "DELETE"]
    assert len({r.key for r in honouring.requests_under(PROBE_PREFIX)}) == 1
    assert [r.if_none_match for r in honouring.requests_under(PROBE_PREFIX)][:2] == ["*", "*"]
    assert [e for e in logs if e["log_level"] == "warning"] == []
    assert await _probe_leftovers(s3, bucket) == []


async def test_a_store_that_ignores_the_header_is_detected_and_warned_about(
    ignoring: S3Proxy, s3: Any, bucket: str
) -> None:
    """The second put is accepted: conditional writes are off, a warning says so, the object is gone."""
    async with _storage(ignoring.url, bucket) as storage:
        with structlog.testing.capture_logs() as logs:
            assert await storage.check_conditional_writes() is False
        assert storage.conditional_writes is False
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == "s3_conditional_writes_ignored"
    assert "checking first" in warning["fallback"]
    assert _methods(ignoring, PROBE_PREFIX) == ["PUT", "PUT", "DELETE"]
    assert await _probe_leftovers(s3, bucket) == []


@pytest.mark.parametrize("drop", [False, True], ids=["honoured", "ignored"])
async def test_on_a_versioned_bucket_the_probe_leaves_no_version_behind(
    moto_endpoint: str, s3: Any, bucket: str, drop: bool
) -> None:
    """Each version the probe wrote is deleted, so no old version or delete marker stays."""
    await s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    async with (
        S3Proxy(moto_endpoint, drop_if_none_match=drop) as proxy,
        _storage(proxy.url, bucket) as storage,
    ):
        assert await storage.check_conditional_writes() is not drop
    assert await _probe_leftovers(s3, bucket) == []


@pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (501, "NotImplemented")])
async def test_a_probe_the_store_refuses_means_checking_first_not_a_failed_start(
    ignoring: S3Proxy, s3: Any, bucket: str, status: int, code: str
) -> None:
    """A denied probe prefix, or a store that rejects the header, warns and falls back to checking first."""
    ignoring.refuse(PROBE_PREFIX, status, code)
    async with _storage(ignoring.url, bucket) as storage:
        with structlog.testing.capture_logs() as logs:
            assert await storage.check_conditional_writes() is False
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert (warning["event"], warning["error"], warning["write"]) == (
        "s3_conditional_writes_probe_failed",
        code,
        "first",
    )
    assert _methods(ignoring, PROBE_PREFIX) == ["PUT"]  # refused: nothing written, nothing to delete
    assert await object_keys(s3, bucket) == []


@pytest.mark.parametrize("setting", [True, False])
async def test_an_explicit_setting_makes_no_probe(ignoring: S3Proxy, bucket: str, setting: bool) -> None:
    """true or false is the operator's word: no probe request is made."""
    async with _storage(ignoring.url, bucket, setting) as storage:
        assert await storage.check_conditional_writes() is setting
    assert ignoring.requests_under(PROBE_PREFIX) == []


async def test_after_the_probe_another_users_file_is_never_replaced(
    ignoring: S3Proxy, s3: Any, bucket: str
) -> None:
    """On a store that ignores the header, a refused save is checked first and keeps the old object."""
    async with _storage(ignoring.url, bucket) as storage:
        await storage.check_conditional_writes()
        await storage.save("a.txt", _one(b"old"), INFO, 3, may_replace=_refuse)
        with pytest.raises(TransferError, match="taken by 1"):
            await storage.save("a.txt", _one(b"newer"), INFO, 5, may_replace=_refuse)
    data, _ = await read_object(s3, bucket, "a.txt")
    assert data == b"old"
    assert _methods(ignoring, "a.txt") == ["HEAD", "PUT", "HEAD"]
    assert {r.if_none_match for r in ignoring.requests_under("a.txt")} == {None}


# -- the real process --------------------------------------------------------------------------------


def _outcome(call: Any, chat_id: int) -> bool:
    text = str(call.params.get("text", ""))
    return to_chat(call, "sendMessage", chat_id) and "[document has" in text


async def _send(telegram: FakeTelegram, chat_id: int, content: bytes) -> str:
    """Send ``content`` as NAME from the chat's user; return the outcome reply (saved or not)."""
    since = len(telegram.calls)
    document = telegram.add_file(content, file_name=NAME, mime_type="application/pdf")
    telegram.add_update(updates.message(chat_id, document=document))
    call = await telegram.wait_for_call(lambda c: _outcome(c, chat_id), since=since, timeout=REPLY_TIMEOUT_S)
    return str(call.params["text"])


async def _two_users_one_name(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """The owner may replace their file; another user's file of the same name is refused, as always."""
    first, again, second = b"first user's report", b"first user's report, v2", b"second user's report"
    assert "[document has been saved]" in await _send(telegram, FIRST_USER, first)
    reply = await _send(telegram, FIRST_USER, again)
    assert "[document has been saved]" in reply and "It replaced the earlier file" in reply
    assert await _send(telegram, SECOND_USER, second) == TAKEN
    data, stored = await read_object(s3, bucket, NAME)
    assert (data, stored["Metadata"]["user-id"]) == (again, str(FIRST_USER))


async def _stop(bot: BotProcess) -> list[dict[str, Any]]:
    """SIGTERM, a clean exit, and the bot's log records."""
    bot.proc.send_signal(signal.SIGTERM)
    assert await bot.wait_exit() == 0, bot.stderr()
    bot.assert_no_traceback()
    return bot.log_records()


def _events(records: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == event]


@pytest.mark.e2e
async def test_the_bot_detects_a_store_that_ignores_if_none_match_and_keeps_each_users_file(
    launch: Launch, telegram: FakeTelegram, ignoring: S3Proxy, s3: Any, bucket: str
) -> None:
    """Behind the header-dropping proxy: the probe runs, a warning is logged, and a second user's
    document of the same name does not replace the first user's file."""
    bot = await launch(bot_env(telegram, bucket, ignoring.url))
    await wait_polling(telegram, bot)
    probe = ignoring.requests_under(PROBE_PREFIX)
    assert [(r.method, r.if_none_match) for r in probe] == [("PUT", "*"), ("PUT", "*"), ("DELETE", None)]

    await _two_users_one_name(telegram, s3, bucket)
    assert await object_keys(s3, bucket) == [NAME]
    assert await _probe_leftovers(s3, bucket) == []
    records = await _stop(bot)
    [warning] = _events(records, "s3_conditional_writes_ignored")
    assert warning["level"] == "warning" and "checking first" in warning["fallback"]
    [mode] = _events(records, "s3_write_mode")
    assert (mode["conditional_writes"], mode["source"]) == (False, "probe")


@pytest.mark.e2e
async def test_on_moto_itself_the_probe_finds_conditional_writes_and_warns_of_nothing(
    launch: Launch, telegram: FakeTelegram, moto_endpoint: str, s3: Any, bucket: str
) -> None:
    """Straight to moto: the probe finds If-None-Match honoured, logs no warning and leaves nothing."""
    bot = await launch(bot_env(telegram, bucket, moto_endpoint))
    await wait_polling(telegram, bot)
    await _two_users_one_name(telegram, s3, bucket)
    assert await object_keys(s3, bucket) == [NAME]
    assert await _probe_leftovers(s3, bucket) == []
    records = await _stop(bot)
    [mode] = _events(records, "s3_write_mode")
    assert (mode["conditional_writes"], mode["source"]) == (True, "probe")
    about_the_store = [
        r for r in records if r.get("level") != "info" and str(r.get("event")).startswith("s3_")
    ]
    assert about_the_store == []


@pytest.mark.e2e
async def test_conditional_writes_false_checks_first_without_a_probe(
    launch: Launch, telegram: FakeTelegram, ignoring: S3Proxy, s3: Any, bucket: str
) -> None:
    """TGS3BOT_S3_CONDITIONAL_WRITES=false: no probe, no If-None-Match sent, each user's file kept."""
    bot = await launch(bot_env(telegram, bucket, ignoring.url, TGS3BOT_S3_CONDITIONAL_WRITES="false"))
    await wait_polling(telegram, bot)
    await _two_users_one_name(telegram, s3, bucket)
    assert ignoring.requests_under(PROBE_PREFIX) == []
    assert {r.if_none_match for r in ignoring.requests} == {None}
    records = await _stop(bot)
    [mode] = _events(records, "s3_write_mode")
    assert (mode["conditional_writes"], mode["source"]) == (False, "TGS3BOT_S3_CONDITIONAL_WRITES")


@pytest.mark.e2e
async def test_conditional_writes_true_is_trusted_without_a_probe(
    launch: Launch, telegram: FakeTelegram, ignoring: S3Proxy, s3: Any, bucket: str
) -> None:
    """TGS3BOT_S3_CONDITIONAL_WRITES=true: no probe, saves rely on the header; on a store that
    ignores it, that loses the first user's file, which is why unset (auto) probes."""
    bot = await launch(bot_env(telegram, bucket, ignoring.url, TGS3BOT_S3_CONDITIONAL_WRITES="true"))
    await wait_polling(telegram, bot)
    assert ignoring.requests_under(PROBE_PREFIX) == []
    assert "[document has been saved]" in await _send(telegram, FIRST_USER, b"first user's report")
    overwritten = os.urandom(64)
    assert "[document has been saved]" in await _send(telegram, SECOND_USER, overwritten)
    data, _ = await read_object(s3, bucket, NAME)
    assert data == overwritten
    assert [r.if_none_match for r in ignoring.requests_under(NAME) if r.method == "PUT"] == ["*", "*"]
    records = await _stop(bot)
    [mode] = _events(records, "s3_write_mode")
    assert (mode["conditional_writes"], mode["source"]) == (True, "TGS3BOT_S3_CONDITIONAL_WRITES")

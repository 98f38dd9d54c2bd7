"""The metric hooks: one registry per app, no-ops where none is bound, kinds and never texts."""

from __future__ import annotations

import asyncio

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tgs3bot import metrics
from tgs3bot.errors import TransientError
from tgs3bot.metrics import Metrics


def test_hooks_do_nothing_where_no_metrics_are_bound() -> None:
    """Outside an app with metrics on, every hook is a no-op (and raises nothing)."""
    assert metrics.current() is None
    metrics.update_handled("greeting", "ok", 0.01)
    metrics.document_saved(10)
    metrics.same_file_saved("copied")
    metrics.bot_api_error(TransientError, "sendMessage")
    metrics.s3_error(ClientError({"Error": {"Code": "NoSuchBucket"}}, "PutObject"))
    with metrics.poll_round_trip(), metrics.standing_by():
        pass


async def test_two_apps_in_one_process_count_into_their_own_registries() -> None:
    """Metrics bound in one task (and the tasks it starts) never reach another task's registry."""
    first, second = Metrics(), Metrics()

    async def handle(m: Metrics, updates: int) -> None:
        with metrics.bound(m):
            await asyncio.gather(*(asyncio.create_task(_handled("document", "ok")) for _ in range(updates)))

    await asyncio.gather(handle(first, 1), handle(second, 3))
    labels = {"route": "document", "outcome": "ok"}
    assert first.registry.get_sample_value("tgs3bot_updates_total", labels) == 1
    assert second.registry.get_sample_value("tgs3bot_updates_total", labels) == 3
    assert metrics.current() is None


async def _handled(route: str, outcome: str) -> None:
    metrics.update_handled(route, outcome, 0.02)


def test_s3_errors_are_counted_by_operation_and_code_or_class() -> None:
    """S3's error code (ClientError) or botocore's class (no answer at all), never the message."""
    m = Metrics()
    with metrics.bound(m):
        metrics.s3_error(ClientError({"Error": {"Code": "SlowDown", "Message": "secret"}}, "UploadPart"))
        metrics.s3_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    get = m.registry.get_sample_value
    assert get("tgs3bot_s3_errors_total", {"operation": "UploadPart", "kind": "SlowDown"}) == 1
    assert get("tgs3bot_s3_errors_total", {"operation": "unknown", "kind": "EndpointConnectionError"}) == 1


async def test_a_poll_round_trip_times_successes_and_tracks_the_failure_streak() -> None:
    """A success is timed and ends the streak; a failure starts it with its kind; a cancel is neither."""
    m = Metrics()
    with metrics.bound(m):
        with pytest.raises(TransientError), metrics.poll_round_trip():
            raise TransientError("502")
        assert m.polling.last_failure == "TransientError"
        assert m.polling.failing_since is not None
        with pytest.raises(asyncio.CancelledError), metrics.poll_round_trip():
            raise asyncio.CancelledError
        assert m.polling.last_failure == "TransientError"
        with metrics.poll_round_trip():
            pass
    after_success = m.polling  # a new name: mypy keeps the narrowing of m.polling.failing_since above
    assert (after_success.failing_since, after_success.last_failure) == (None, None)
    assert m.registry.get_sample_value("tgs3bot_poll_duration_seconds_count") == 1


async def test_transfers_in_flight_go_up_for_the_block_and_down_after_it_even_on_errors() -> None:
    """The gauge counts a transfer while it runs and forgets it however it ends."""
    m = Metrics()
    with metrics.bound(m):
        async with metrics.transfer_in_flight():
            assert m.registry.get_sample_value("tgs3bot_transfers_in_flight") == 1
        with pytest.raises(RuntimeError):
            async with metrics.transfer_in_flight():
                raise RuntimeError("download broke off")
    assert m.registry.get_sample_value("tgs3bot_transfers_in_flight") == 0

"""S3Storage against moto's server over HTTP: conditional puts, the owner check, reused part buffers."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tgs3bot.config import MiB
from tgs3bot.errors import TransferError
from tgs3bot.storage import PartBuffers, S3Storage
from tgs3bot.storage.base import ObjectInfo, StoredObject
from tgs3bot.storage.parts import PartReader, _PooledPart

INFO = ObjectInfo(content_type="text/plain", content_disposition="attachment", metadata={"user-id": "1"})
MOTO_MIN_PART = 5 * MiB  # S3's (and moto's) smallest part but the last


async def _stream(data: bytes, chunk: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


def _allow(existing: StoredObject) -> None:
    """A ReplaceCheck that lets every save replace the object there."""


def _refuse(existing: StoredObject) -> None:
    raise TransferError(f"taken by {existing.metadata.get('user-id')}")


@asynccontextmanager
async def _storage(
    moto_endpoint: str, bucket: str, **options: Any
) -> AsyncIterator[tuple[S3Storage, Counter[str]]]:
    """An S3Storage and a count of the S3 operations it calls (botocore's public event hooks)."""
    calls: Counter[str] = Counter()
    async with S3Storage(bucket, endpoint_url=moto_endpoint, region="us-east-1", **options) as storage:

        def count(model: Any, **_: Any) -> None:
            calls[model.name] += 1

        storage.client.meta.events.register("before-call.s3", count)
        yield storage, calls


@pytest.fixture(params=[True, False], ids=["conditional", "head-first"])
async def storage(
    request: pytest.FixtureRequest, moto_endpoint: str, bucket: str
) -> AsyncIterator[tuple[S3Storage, Counter[str]]]:
    async with _storage(moto_endpoint, bucket, conditional_writes=request.param) as pair:
        yield pair


async def _body(s3: Any, bucket: str, key: str) -> bytes:
    answer = await s3.get_object(Bucket=bucket, Key=key)
    async with answer["Body"] as body:
        return bytes(await body.read())


async def test_new_small_file_is_one_conditional_put(moto_endpoint: str, bucket: str, s3: Any) -> None:
    async with _storage(moto_endpoint, bucket) as (storage, calls):
        result = await storage.save("a.txt", _stream(b"hello"), INFO, 5, may_replace=_refuse)
        assert (result.size, result.replaced) == (5, False)
        assert calls == Counter({"PutObject": 1})
    assert await _body(s3, bucket, "a.txt") == b"hello"


async def test_without_conditional_writes_the_name_is_checked_first(moto_endpoint: str, bucket: str) -> None:
    async with _storage(moto_endpoint, bucket, conditional_writes=False) as (storage, calls):
        await storage.save("a.txt", _stream(b"hello"), INFO, 5, may_replace=_refuse)
        assert calls == Counter({"HeadObject": 1, "PutObject": 1})


async def test_a_taken_name_may_be_replaced(
    storage: tuple[S3Storage, Counter[str]], bucket: str, s3: Any
) -> None:
    store, _ = storage
    await store.save("a.txt", _stream(b"old"), INFO, 3, may_replace=_refuse)
    result = await store.save("a.txt", _stream(b"newer"), INFO, 5, may_replace=_allow)
    assert (result.size, result.replaced) == (5, True)
    assert await _body(s3, bucket, "a.txt") == b"newer"


async def test_a_refused_replacement_keeps_the_old_object(
    storage: tuple[S3Storage, Counter[str]], bucket: str, s3: Any
) -> None:
    store, _ = storage
    await store.save("a.txt", _stream(b"old"), INFO, 3, may_replace=_refuse)
    with pytest.raises(TransferError, match="taken by 1"):
        await store.save("a.txt", _stream(b"newer"), INFO, 5, may_replace=_refuse)
    assert await _body(s3, bucket, "a.txt") == b"old"


async def test_a_big_file_is_checked_before_its_download(moto_endpoint: str, bucket: str, s3: Any) -> None:
    async with _storage(moto_endpoint, bucket, part_size=MOTO_MIN_PART) as (store, _):
        await store.save("big.bin", _stream(b"old"), INFO, 3, may_replace=_refuse)
        pulled = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal pulled
            async for chunk in _stream(os.urandom(2 * MOTO_MIN_PART)):
                pulled += 1
                yield chunk

        with pytest.raises(TransferError):
            await store.save("big.bin", counted(), INFO, 2 * MOTO_MIN_PART, may_replace=_refuse)
        assert pulled == 0
    assert await _body(s3, bucket, "big.bin") == b"old"


@pytest.mark.parametrize("size", [3 * MOTO_MIN_PART + 12_345, 3 * MOTO_MIN_PART])
async def test_multipart_upload_keeps_every_byte(moto_endpoint: str, bucket: str, s3: Any, size: int) -> None:
    data = os.urandom(size)
    async with _storage(moto_endpoint, bucket, part_size=MOTO_MIN_PART) as (store, calls):
        result = await store.save("big.bin", _stream(data, 777_777), INFO, size, may_replace=_refuse)
        assert result.size == size
        assert calls["UploadPart"] == -(-size // MOTO_MIN_PART)
    assert await _body(s3, bucket, "big.bin") == data


async def test_a_stream_longer_than_its_size_stores_nothing(
    storage: tuple[S3Storage, Counter[str]], bucket: str, s3: Any
) -> None:
    store, _ = storage
    with pytest.raises(TransferError, match="ran past"):
        await store.save("a.txt", _stream(b"longer than said"), INFO, 4, may_replace=_refuse)
    listing = await s3.list_objects_v2(Bucket=bucket)
    assert listing.get("KeyCount") == 0


def _chunks(data: bytes, sizes: Iterable[int]) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        start = 0
        for size in sizes:
            yield data[start : start + size]
            start += size

    return gen()


async def test_part_reader_reuses_released_buffers_and_trims_the_last_part() -> None:
    data = bytes(range(256)) * 10  # 2560 bytes: parts of 1000, 1000, 560
    pool = PartBuffers(max_bytes=10_000, min_pooled=1)
    reader = PartReader(_chunks(data, [300] * 8 + [160]), 1000, len(data), pool)
    first = await reader.read()
    second = await reader.read()
    assert first is not None and second is not None and first is not second
    assert (first.getvalue(), second.getvalue()) == (data[:1000], data[1000:2000])
    reader.release(first)
    third = await reader.read()
    assert third is first  # the released buffer, filled again
    assert third.tell() == 0 and third.getvalue() == data[2000:]
    assert await reader.read() is None
    assert reader.ended and reader.total == len(data)


async def test_part_reader_without_a_known_size() -> None:
    data = b"x" * 2500
    reader = PartReader(_chunks(data, [700, 700, 700, 400]), 1000, None, PartBuffers(10_000, min_pooled=1))
    parts = []
    while (part := await reader.read()) is not None:
        parts.append(part.getvalue())
        reader.release(part)
    assert parts == [data[:1000], data[1000:2000], data[2000:]]


async def test_part_reader_refuses_a_stream_longer_than_its_size() -> None:
    reader = PartReader(_chunks(b"y" * 50, [30, 20]), 1000, 40, PartBuffers(10_000))
    with pytest.raises(TransferError, match="ran past"):
        await reader.read()


def test_part_buffers_are_kept_by_size_class_within_a_budget() -> None:
    pool = PartBuffers(max_bytes=8192, min_pooled=1024)
    big = pool.take(3000)  # the 4096 class
    pool.give(big)
    assert pool.take(2100) is big  # 2100 bytes fill more than half of it
    assert pool.take(2000) is not big  # the 2048 class
    small = pool.take(500)  # under min_pooled: never kept
    pool.give(small)
    assert pool.kept == 0
    kept = [pool.take(4096) for _ in range(3)]
    for buffer in kept:
        pool.give(buffer)
    assert pool.kept == 8192  # two of the three: the budget
    assert pool.take(4000) in kept


def test_a_bigger_free_buffer_serves_a_smaller_part_and_leaves_the_pool_if_cut_below_half() -> None:
    pool = PartBuffers(max_bytes=8192, min_pooled=1024)
    big = pool.take(4096)
    pool.give(big)
    reused = pool.take(1500)  # no free 2048 buffer: the 4096 one rather than a new allocation
    assert reused is big
    assert isinstance(reused, _PooledPart)
    reused.write(b"z" * 1500)
    reused.trimmed(1500)  # CPython reallocates it smaller: not a 4096 buffer any more
    pool.give(reused)
    assert pool.kept == 0 and reused.getvalue() == b"z" * 1500

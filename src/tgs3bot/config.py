"""Settings: environment, a ``.env`` file and command-line flags, in that order of precedence.

flags > environment > ``.env``. Every setting is ``TGS3BOT_<NAME>`` in the environment and
``--<name-in-kebab-case>`` on the command line, except the token, which would show in ``ps``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024
CLOUD_DOWNLOAD_LIMIT = 20 * MiB  # getFile refuses bigger files on the cloud Bot API
LOCAL_DOWNLOAD_LIMIT = 2000 * 1000 * 1000  # the local Bot API server's limit ("2000 MB")
# TGS3BOT_S3_CONDITIONAL_WRITES: "auto" probes the store at start (storage.probe).
ConditionalWrites = Literal["auto"] | bool
_CONDITIONAL_WRITES_WORDS: dict[str, ConditionalWrites] = {
    "auto": "auto",
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}
# TGS3BOT_LINK_TTL: a SigV4 presigned URL is valid for at most 7 days, so longer cannot be signed.
MAX_LINK_TTL_S = 7 * 24 * 3600
_DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 24 * 3600}
_DURATION = re.compile(r"(?:([0-9]+(?:\.[0-9]+)?)([smhd]))+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")


class Settings(BaseSettings):
    """Everything an operator can set. Field names are the variable names without the prefix."""

    model_config = SettingsConfigDict(
        env_prefix="TGS3BOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    telegram_token: SecretStr | None = Field(
        None, description="bot token from @BotFather (optional once VK is set)"
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org", description="Bot API base URL (a local Bot API server, a fake)"
    )
    telegram_local_mode: bool = Field(
        False, description="the base is a local Bot API server started with --local"
    )
    telegram_local_server_dir: str = Field(
        "/var/lib/telegram-bot-api",
        description="local mode: the local Bot API server's --dir, as the server sees it",
    )
    telegram_local_dir: Path | None = Field(
        None, description="local mode: that directory as the bot sees it (default: the same path)"
    )
    telegram_proxy: str | None = Field(None, description="proxy URL for the Bot API")
    s3_bucket: str = Field(min_length=1, description="bucket the documents are saved into")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto, any S3)")
    s3_region: str | None = Field(None, description="S3 region (default: the AWS chain)")
    s3_conditional_writes: ConditionalWrites = Field(
        "auto",
        description="auto: probe at start whether the store honours If-None-Match (files under 8 MiB are "
        "then put with it, one request; else each name is checked first); true: rely on it, no probe; "
        "false: always check first, no probe",
    )
    s3_public_url: str | None = Field(
        None,
        description="S3 endpoint that share links name, where people can reach it (signing only; "
        "default: TGS3BOT_S3_ENDPOINT_URL, or AWS)",
    )
    link_ttl: int = Field(
        24 * 3600,
        ge=1,
        description="how long a share link works: seconds, or a duration like 12h, 1d, 1d12h "
        "(at most 7d, S3's limit for a signed link)",
    )
    concurrent_workers: int = Field(8, ge=1, le=1000, description="worker coroutines")
    queue_size: int = Field(100, ge=1, description="updates taken from the platforms and not yet handled")
    allowed_users: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(),
        description="comma-separated Telegram user ids allowed to use the bot; "
        "empty here and in TGS3BOT_VK_ALLOWED_USERS: everyone",
    )
    vk_token: SecretStr | None = Field(None, description="VK community token (Bots Long Poll API)")
    vk_group_id: int | None = Field(None, gt=0, description="the VK community's id (with TGS3BOT_VK_TOKEN)")
    vk_api_url: str = Field("https://api.vk.com/method", description="VK API base URL (a fake, a proxy)")
    vk_allowed_users: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(),
        description="comma-separated VK user ids allowed to use the bot; one allowlist set anywhere "
        "closes the bot on every platform",
    )
    state_path: Path = Field(Path("tgs3bot-state.sqlite3"), description="SQLite file of the state")
    shutdown_timeout: float = Field(30.0, gt=0, description="seconds to finish queued work on SIGTERM")
    log_format: Literal["json", "console"] | None = Field(
        None, description="json or console (default: console on a terminal, else json)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="")
    redis_url: SecretStr | None = Field(
        None,
        description="redis://[:password@]host:port/db (Redis >= 6.2): the queue and the state live there, "
        "shared by several processes (tgs3bot poll, tgs3bot work); unset: one process, SQLite",
    )
    redis_lease_s: float = Field(
        15.0, gt=0, description="seconds a dead poller's lease lasts before a standby takes over"
    )
    redis_claim_idle_s: float = Field(
        60.0, gt=0, description="seconds before a dead worker's update is taken over by another"
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="serve /metrics and /healthz on this port; unset: off"
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="address the metrics server listens on (0.0.0.0 in a container, so others reach it)",
    )
    health_max_poll_failure_s: float = Field(
        60.0, ge=0, description="seconds getUpdates may keep failing before /healthz answers 503"
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="uvloop (where installed, as it is by default on Linux and macOS) or asyncio's own",
    )

    @field_validator("allowed_users", "vk_allowed_users", mode="before")
    @classmethod
    def _split_user_ids(cls, value: Any) -> Any:
        # pydantic-settings would parse a list from the environment as JSON; operators write "1,2".
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

    @field_validator("s3_conditional_writes", mode="before")
    @classmethod
    def _auto_or_bool(cls, value: Any) -> Any:
        if isinstance(value, str):
            word = value.strip().lower()
            if word not in _CONDITIONAL_WRITES_WORDS:
                raise ValueError("must be auto, true or false")
            return _CONDITIONAL_WRITES_WORDS[word]
        return value

    @field_validator("link_ttl", mode="before")
    @classmethod
    def _seconds_or_duration(cls, value: Any) -> Any:
        return duration_s(value) if isinstance(value, str) else value

    @field_validator("link_ttl")
    @classmethod
    def _at_most_a_week(cls, value: int) -> int:
        if value > MAX_LINK_TTL_S:
            raise ValueError(f"at most 7 days ({MAX_LINK_TTL_S} s): S3 signs a link for a week at most")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _some_platform(self) -> Self:
        if self.telegram_token is None and self.vk_token is None:
            raise ValueError(
                "no platform is set: the Telegram bot token (TGS3BOT_TELEGRAM_TOKEN), "
                "or the VK community token (TGS3BOT_VK_TOKEN), or both"
            )
        if self.vk_token is not None and self.vk_group_id is None:
            raise ValueError("the VK community token needs its community's id (TGS3BOT_VK_GROUP_ID)")
        return self

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms this bot serves, by name."""
        return tuple(
            name for name, token in (("telegram", self.telegram_token), ("vk", self.vk_token)) if token
        )

    @property
    def allowed(self) -> frozenset[tuple[str, int]]:
        """Every platform's allowlist as (platform, user id); empty: an open bot."""
        return frozenset(("telegram", user) for user in self.allowed_users) | frozenset(
            ("vk", user) for user in self.vk_allowed_users
        )

    @property
    def download_limit(self) -> int:
        """The biggest file the Bot API hands out in the configured mode, in bytes."""
        return download_limit(local_mode=self.telegram_local_mode)


def download_limit(*, local_mode: bool) -> int:
    """The biggest file the Bot API hands out: the cloud's, or a local server's, in bytes."""
    return LOCAL_DOWNLOAD_LIMIT if local_mode else CLOUD_DOWNLOAD_LIMIT


def duration_s(text: str) -> int:
    """Seconds from ``"3600"`` or a duration like ``"90m"``, ``"12h"``, ``"1d12h"`` (units s, m, h, d)."""
    word = text.strip().lower()
    if word.isdigit():
        return int(word)
    if not _DURATION.fullmatch(word):
        raise ValueError("must be whole seconds or a duration like 90m, 12h, 1d, 1d12h")
    return round(sum(float(n) * _DURATION_UNITS_S[unit] for n, unit in _DURATION_PART.findall(word)))


def load_settings(overrides: dict[str, Any] | None = None, env_file: Path = Path(".env")) -> Settings:
    """Build the settings; ``overrides`` (from flags) win over the environment and ``.env``.

    ``AWS_*`` lines in ``.env`` are exported to the process environment (where the environment does
    not already set them) so the standard AWS credential chain sees them.
    """
    if env_file.is_file():
        for key, value in dotenv_values(env_file).items():
            if key.startswith("AWS_") and value is not None:
                os.environ.setdefault(key, value)
    values = {k: v for k, v in (overrides or {}).items() if v is not None}
    return Settings(_env_file=env_file, **values)  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How many worker coroutines take updates from the queue."""

    concurrent_workers: int = 8


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    """Retry timing for calls to the platform, shared by the poller and the senders.

    ``conflict_give_up_s``: Telegram answers 409 while an old instance finishes its last long poll
    (up to its timeout, 60 s); conflicts that outlast this window mean another live instance.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    conflict_give_up_s: float = 90.0
    send_attempts: int = 5
    max_retry_after_s: float = 300.0

    def delay_s(self, attempt: int, jitter: float) -> float:
        """The wait before retry number ``attempt`` (0-based); ``jitter`` in [0, 1) spreads clients."""
        base = min(self.max_s, self.initial_s * self.factor**attempt)
        return base * (0.5 + jitter / 2)

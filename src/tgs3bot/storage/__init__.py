"""Where documents go: S3 (or any S3-compatible store) through aioboto3."""

from tgs3bot.storage.parts import PartBuffers
from tgs3bot.storage.probe import PROBE_PREFIX
from tgs3bot.storage.s3 import S3Storage

__all__ = ["PROBE_PREFIX", "PartBuffers", "S3Storage"]

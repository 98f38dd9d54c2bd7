"""What the bot writes into a saved object's metadata, and reads back from it.

S3 sends each as ``x-amz-meta-<name>`` (README "Object metadata"). Who saved an object is the pair
(platform, user id), as the index's owner is: the overwrite rule, a same-key "already there" and
a copy under another name all compare it with the sender's ``Event.user``.
"""

from __future__ import annotations

from collections.abc import Mapping

from tgs3bot.events import Document, Event, UserKey
from tgs3bot.storage.base import StoredObject

OWNER_KEY = "user-id"  # who saved it (x-amz-meta-user-id)
# ...and on which platform that id is (x-amz-meta-platform); absent on objects saved before VK,
# which Telegram users saved.
PLATFORM_KEY = "platform"
LEGACY_PLATFORM = "telegram"
CHAT_KEY = "chat-id"
UNIQUE_ID_KEY = "file-unique-id"  # the platform's file the object holds (handlers.again)


def object_metadata(event: Event, document: Document) -> Mapping[str, str]:
    """The metadata a save (a fresh put or a copy) writes for the sender's document."""
    return {
        OWNER_KEY: str(event.user_id),
        PLATFORM_KEY: event.platform,
        CHAT_KEY: str(event.chat_id),
        UNIQUE_ID_KEY: document.file_unique_id,
    }


def saved_platform(stored: StoredObject) -> str:
    """The platform of whoever saved the object (objects saved before VK are Telegram's)."""
    return stored.metadata.get(PLATFORM_KEY, LEGACY_PLATFORM)


def saved_by(stored: StoredObject) -> UserKey | None:
    """Who saved the object, from its metadata: (platform, user id); None if it does not say."""
    try:
        return (saved_platform(stored), int(stored.metadata.get(OWNER_KEY, "")))
    except ValueError:  # put there by someone else, or by hand
        return None

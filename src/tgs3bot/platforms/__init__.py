"""The messaging platforms, each behind ``interfaces.Platform``: one module per platform client.

- ``telegram`` (with ``telegram_api``: aiogram's Bot API models tuned for the hot path);
- ``vk`` (with ``vk_api``, ``vk_events`` and ``vk_files``): VK communities' Bots Long Poll API.

Nothing is imported here: a bot that serves one platform never loads the other's client.
"""

"""Test doubles for the services tgs3bot talks to (the Telegram Bot API)."""

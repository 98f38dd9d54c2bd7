"""What the fake VK knows: the community, its events, the docs and the bot's messages.

``FakeVk`` (``vk.py``) serves this over HTTP; this half holds the state, acts as users and
answers the methods, with VK's shapes (API 5.199) and its errors.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .telegram import DownloadFaults
from .wire import Call, Json, Signal

TOKEN = "vk1.a.FakeCommunityTokenForTestsOnly_abcdefghijklmnopqrstuvwxyz0123456789"
GROUP_ID = 229_000_001
FIRST_TS = 1000
ERROR_TEXTS = {
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied: no access to call this method",
    100: "One of the parameters specified was missing or invalid",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    911: "Keyboard format is invalid",
}


@dataclass
class VkDoc:
    """A doc registered with ``add_doc`` and how often it was downloaded."""

    owner_id: int
    doc_id: int
    content: bytes
    attachment: Json
    faults: DownloadFaults
    downloads_started: int = 0
    downloads_completed: int = 0


@dataclass
class VkMessage:
    """A message the bot sent (one per distinct ``random_id``), with its current text after edits."""

    peer_id: int
    conversation_message_id: int
    message_id: int
    random_id: int
    text: str
    keyboard: Json | None
    reply_to: int | None
    edits: list[str] = field(default_factory=list)

    def buttons(self) -> dict[str, str]:
        """The message's callback buttons now: label → the data its payload carries (``{"d": …}``)."""
        rows = (self.keyboard or {}).get("buttons", [])
        actions = [button["action"] for row in rows for button in row]
        return {a["label"]: json.loads(a["payload"]).get("d") for a in actions}

    def button_data(self, word: str) -> str:
        """The data of the one button whose label contains ``word``."""
        found = [data for label, data in self.buttons().items() if word in label]
        assert len(found) == 1, f"one {word!r} button expected, got {self.buttons()!r}"
        return found[0]


class VkError(Exception):
    """Raised by a method handler to answer VK's error ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class VkCommunity:
    """A community's state as VK keeps it, and the methods' answers from it."""

    def __init__(self, token: str = TOKEN, group_id: int = GROUP_ID) -> None:
        self.token = token
        self.group_id = group_id
        self.token_group_id = group_id  # the community the token belongs to
        self.long_poll_enabled = True
        self.long_poll_events = {"message_new": 1, "message_event": 1, "message_reply": 0}
        self.long_poll_version = "5.199"
        self.blocked_peers: set[int] = set()  # 901
        self.private_peers: set[int] = set()  # 902
        self.calls: list[Call] = []
        self.messages: list[VkMessage] = []
        self.docs: dict[str, VkDoc] = {}
        self.history_start = FIRST_TS  # a poll from an older ts gets failed 1
        self.base_url = ""
        self._events: list[Json] = []  # event number i is FIRST_TS + i
        self._key = secrets.token_hex(8)
        self._by_random_id: dict[int, VkMessage] = {}
        self._cmids: dict[int, itertools.count[int]] = {}
        self._message_ids = itertools.count(1)
        self._doc_ids = itertools.count(700_001)
        self._signal = Signal()

    # -- users ---------------------------------------------------------------------------------

    @property
    def ts(self) -> int:
        """The ts of the next event (what getLongPollServer answers)."""
        return FIRST_TS + len(self._events)

    def add_event(self, kind: str, obj: Json) -> Json:
        """Queue a long-poll event (with a fresh ``event_id``), wake the polls, return it."""
        event = {"group_id": self.group_id, "type": kind, "event_id": secrets.token_hex(20), "v": "5.199"}
        event["object"] = obj
        self._events.append(event)
        self._signal.fire()
        return event

    def events_from(self, ts: int) -> list[Json]:
        """The events numbered ``ts`` and later (what a poll from ``ts`` gets)."""
        return self._events[max(ts - FIRST_TS, 0) :]

    def next_cmid(self, peer_id: int) -> int:
        """The next conversation_message_id in the peer's dialog (users' and the bot's messages share it)."""
        return next(self._cmids.setdefault(peer_id, itertools.count(1)))

    def send_message(
        self, user_id: int, text: str = "", *, attachments: Sequence[Json] = (), peer_id: int | None = None
    ) -> Json:
        """A user writes to the community (``peer_id``: a group chat); return the message dict."""
        peer = user_id if peer_id is None else peer_id
        message = {
            "date": int(time.time()),
            "from_id": user_id,
            "id": next(self._message_ids) if peer < 2_000_000_000 else 0,
            "peer_id": peer,
            "text": text,
            "conversation_message_id": self.next_cmid(peer),
            "attachments": list(attachments),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "out": 0,
        }
        client_info = {"button_actions": ["text", "callback"], "keyboard": True, "inline_keyboard": True}
        self.add_event("message_new", {"message": message, "client_info": client_info})
        return message

    def press_button(self, user_id: int, data: str | None, cmid: int, *, peer_id: int | None = None) -> str:
        """A user presses a callback button whose data is ``data`` under message ``cmid``; its event_id."""
        event_id = secrets.token_hex(6)
        payload = {"d": data} if data is not None else {"x": 1}
        obj = {"user_id": user_id, "peer_id": user_id if peer_id is None else peer_id, "event_id": event_id}
        self.add_event("message_event", obj | {"payload": payload, "conversation_message_id": cmid})
        return event_id

    def add_doc(
        self,
        content: bytes,
        *,
        title: str = "file.bin",
        ext: str | None = None,
        size: int | Literal["auto"] = "auto",
        owner_id: int = 1,
        **faults: Any,
    ) -> Json:
        """Register a doc and return its attachment (``{"type": "doc", "doc": …}``).

        ``faults``: ``DownloadFaults`` fields (``truncate_at``, ``hold``, ``status``, ``bytes_per_s``…).
        """
        doc_id = next(self._doc_ids)
        name = f"{owner_id}_{doc_id}"
        doc = {
            "id": doc_id,
            "owner_id": owner_id,
            "title": title,
            "size": len(content) if size == "auto" else size,
            "ext": ext if ext is not None else title.rpartition(".")[2] if "." in title else "",
            "date": int(time.time()),
            "type": 8,
            "url": f"{self.base_url}/doc/{name}?hash={secrets.token_hex(8)}&dl=1&api=1&no_preview=1",
        }
        attachment = {"type": "doc", "doc": doc}
        self.docs[name] = VkDoc(owner_id, doc_id, content, attachment, DownloadFaults(**faults))
        return attachment

    def forget_history(self) -> None:
        """VK drops the events so far from its long-poll history: a poll from before gets ``failed: 1``."""
        self.history_start = self.ts

    def expire_key(self) -> None:
        """The long-poll key expires: polls with it get ``failed: 2``."""
        self._key = secrets.token_hex(8)

    # -- what the bot sent ---------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        """Every recorded call of ``method``, in order (``status``: 200, or the VK error code)."""
        return [c for c in self.calls if c.method == method]

    def texts(self, peer_id: int) -> list[str]:
        """What the bot sent to ``peer_id`` (first texts, not edits), one per message kept."""
        return [m.text for m in self.messages if m.peer_id == peer_id]

    def chat_view(self, peer_id: int) -> list[str]:
        """The current texts (after edits) of the bot's messages to ``peer_id``."""
        return [m.edits[-1] if m.edits else m.text for m in self.messages if m.peer_id == peer_id]

    def last_message(self, peer_id: int, marker: str = "") -> VkMessage:
        """The bot's latest message to ``peer_id`` whose first text contains ``marker``."""
        return next(m for m in reversed(self.messages) if m.peer_id == peer_id and marker in m.text)

    def message(self, peer_id: int, cmid: int) -> VkMessage:
        """The bot's message ``cmid`` in ``peer_id``."""
        return next(m for m in self.messages if (m.peer_id, m.conversation_message_id) == (peer_id, cmid))

    # -- methods -------------------------------------------------------------------------------

    def _send(self, params: dict[str, Any]) -> Any:
        random_id = int(params["random_id"])
        peer_id = int(params.get("peer_ids") or params["peer_id"])
        if random_id != 0 and random_id in self._by_random_id:  # VK keeps one message per random_id
            return self._sent_answer(self._by_random_id[random_id], params)
        text = str(params.get("message", ""))
        if not text.strip():
            raise VkError(100)
        if peer_id in self.blocked_peers or peer_id in self.private_peers:
            raise VkError(901 if peer_id in self.blocked_peers else 902)
        keyboard = checked_keyboard(params.get("keyboard"))
        forward = params.get("forward")
        reply_to = forward["conversation_message_ids"][0] if isinstance(forward, dict) else None
        message = VkMessage(
            peer_id, self.next_cmid(peer_id), next(self._message_ids), random_id, text, keyboard, reply_to
        )
        self.messages.append(message)
        if random_id != 0:
            self._by_random_id[random_id] = message
        return self._sent_answer(message, params)

    @staticmethod
    def _sent_answer(message: VkMessage, params: dict[str, Any]) -> Any:
        if "peer_ids" not in params:
            return message.message_id
        ids = {"message_id": message.message_id, "conversation_message_id": message.conversation_message_id}
        return [{"peer_id": message.peer_id} | ids]

    def _edit(self, params: dict[str, Any]) -> int:
        peer_id, cmid = int(params["peer_id"]), int(params["conversation_message_id"])
        try:
            message = self.message(peer_id, cmid)
        except StopIteration:
            raise VkError(100) from None
        message.edits.append(str(params["message"]))
        if "keyboard" in params:
            message.keyboard = checked_keyboard(params["keyboard"])
        return 1


def checked_keyboard(value: Any) -> Json | None:
    """A keyboard parameter, checked against VK's inline limits (error 911 otherwise)."""
    if value is None:
        return None
    keyboard = value if isinstance(value, dict) else json.loads(value)
    rows = keyboard.get("buttons", [])
    buttons = [b for row in rows for b in row]
    if not keyboard.get("inline") or len(rows) > 6 or len(buttons) > 10 or any(len(r) > 5 for r in rows):
        raise VkError(911)
    for button in buttons:
        action = button["action"]
        if action["type"] != "callback" or len(action["label"]) > 40 or len(action["payload"]) > 255:
            raise VkError(911)
    return dict(keyboard)

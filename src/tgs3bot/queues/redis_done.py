"""The ``done`` script of ``queues.redis`` (``task_done``'s one round trip), and its reply.

``done`` finishes a worker's event and takes the worker's next turn (``redis_scripts`` says what
the scripts keep together). It runs once per update, so it is shaped for what it costs the bot:
redis-py packs each argument of a command and parses each element of a reply in Python, ~0.6 µs
an argument and ~2.5 µs an element on the benchmark's machine (``bench/README.md``, "What a done
costs"). So:

- **The queue's settings are in the script's text**, not its arguments: the key prefix, the
  share, the handled marks' TTL, the poller's room condition, the state's keys and the streams
  this process serves (``script``). They are the same for every process of one deployment, so
  Redis caches one script per configuration, not one per process.
- **The reply is small**: the outcome alone, or, for each turn it took, one string of three
  lines: ``"{outcome} {entry id} {chat} {fresh} {greeted} {stream number} {has a dialog}"``
  (ids and chats never hold a space), the turn's body, the chat's dialog (both JSON, which never
  holds a raw line break; the dialog, last, could). One turn is that string; two are a list of two.

ARGV: chat, turn id, consumer, the event's body, handled key or '', the number (from 1) of the
served stream to try first for the next turns, 0 to take none (while draining), the turn's stream,
and how many turns to take at most (1, or 2 for a spare: ``redis_finish``). Outcome: -1 if the
consumer no longer owns the turn (another worker claimed it: that one finishes the event, so
nothing changes but the handled mark); 0 if the lane's head is not this event (the turn passes on,
the lane is left alone); 1 once the head is popped and the turn passed on. After a pop, tokens (the
room) go into ``room`` if the poller's condition holds.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

from tgs3bot.queues.redis_scripts import TURN_FUNCTIONS
from tgs3bot.queues.redis_turns import Turn
from tgs3bot.redis_client import text
from tgs3bot.state.redis import ChatState

# Tokens ``done`` keeps in ``room``: one per poller that may be waiting, i.e. per platform (the
# lease lets one poller per platform poll), so Telegram's and VK's are woken by the same room.
# One left over when only one waited is dropped by the next ``enqueue``.
ROOM_TOKENS = 2
_LUA_PLAIN = frozenset(string.ascii_letters + string.digits + ":_-.")

_BODY = """
local chat, id, consumer, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local handled, first, stream, want = ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
if handled ~= '' then
  redis.call('SET', handled, '1', 'EX', TTL)
end
local function leave_room(admitted, queued)
  if SIZE - admitted >= FLOOR and queued - admitted < BACKLOG_LIMIT then
    local tokens = {}
    for i = 1, ROOM_TOKENS do tokens[i] = SIZE - admitted end
    redis.call('LPUSH', P .. 'room', unpack(tokens))
    redis.call('LTRIM', P .. 'room', 0, ROOM_TOKENS - 1)
  end
end
local function finish()
  if not owns(stream, id, consumer) then return -1 end
  local lane = P .. 'lane:' .. chat
  if redis.call('LINDEX', lane, 0) ~= body then
    pass_turn(P, stream, chat, id, '0')
    return 0
  end
  local queued, admitted = redis.call('DECR', P .. 'queued'), nil
  if redis.call('LLEN', lane) <= SHARE then
    admitted = redis.call('DECR', P .. 'admitted')
  else
    admitted = tonumber(redis.call('GET', P .. 'admitted') or 0)
  end
  redis.call('LPOP', lane)
  pass_turn(P, stream, chat, id, '1')
  leave_room(admitted, queued)
  return 1
end
local outcome = finish()
-- One stream at a time: XREADGROUP's COUNT is per stream.
local records = {}
for i = 0, (first > 0) and #STREAMS - 1 or -1 do
  local k = (first + i - 1) % #STREAMS + 1
  local reply = redis.call(
    'XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT', want - #records, 'STREAMS', STREAMS[k], '>')
  for _, entry in ipairs(reply and reply[1][2] or {}) do
    local turn = {}
    for j = 1, #entry[2], 2 do turn[entry[2][j]] = entry[2][j + 1] end
    local greeted = redis.call('SISMEMBER', GREETED, turn.chat)
    local dialog = redis.call('HGET', DIALOGS, turn.chat)
    local fields = {outcome, entry[1], turn.chat, turn.fresh or '0', greeted, k, dialog and 1 or 0}
    records[#records + 1] = table.concat({table.concat(fields, ' '), turn.body or '', dialog or ''}, '\\n')
  end
  if #records >= want then break end
end
if #records == 0 then return outcome end
if #records == 1 then return records[1] end
return records
"""


@dataclass(frozen=True)
class DoneSettings:
    """What ``done`` is built with: the same for every process of one deployment and platforms."""

    prefix: str
    share: int
    handled_ttl_s: int
    queue_size: int
    batch_floor: int
    backlog_limit: int
    greeted_key: str
    dialogs_key: str
    streams: Sequence[str]  # the served streams, in the order their numbers count


def script(settings: DoneSettings) -> str:
    """The ``done`` script with the settings written in as constants."""
    s = settings
    constants = [
        f"local P, GREETED, DIALOGS = {_lua(s.prefix)}, {_lua(s.greeted_key)}, {_lua(s.dialogs_key)}",
        f"local SHARE, TTL, ROOM_TOKENS = {s.share:d}, {s.handled_ttl_s:d}, {ROOM_TOKENS:d}",
        f"local SIZE, FLOOR, BACKLOG_LIMIT = {s.queue_size:d}, {s.batch_floor:d}, {s.backlog_limit:d}",
        "local STREAMS = {" + ", ".join(map(_lua, s.streams)) + "}",
    ]
    return TURN_FUNCTIONS + "\n".join(constants) + _BODY


def _lua(value: str) -> str:
    """A Lua string literal of ``value``: every byte but letters, digits and ``:_-.`` escaped."""
    return '"' + "".join(map(_lua_byte, value.encode())) + '"'


def _lua_byte(byte: int) -> str:
    return chr(byte) if chr(byte) in _LUA_PLAIN else f"\\{byte:03d}"


Reply = int | str | bytes | list[str | bytes]


def outcome(reply: Reply) -> int:
    """The outcome of a ``done`` (-1, 0 or 1), from its reply."""
    first = reply[0] if isinstance(reply, list) else reply
    return first if isinstance(first, int) else int(text(first).split(" ", 1)[0])


def taken_turns(reply: Reply, streams: Sequence[str]) -> list[Turn]:
    """The turns a ``done`` took for this consumer, each with its chat's state read with it."""
    if isinstance(reply, int):
        return []
    return [_turn(record, streams) for record in (reply if isinstance(reply, list) else [reply])]


def _turn(record: str | bytes, streams: Sequence[str]) -> Turn:
    line, body, dialog = text(record).split("\n", 2)
    _outcome, entry_id, chat, fresh, greeted, number, has_dialog = line.split(" ")
    state = ChatState(greeted == "1", dialog if has_dialog == "1" else None)
    return Turn(entry_id, chat, body, fresh == "1", chat_state=state, stream=streams[int(number) - 1])

"""The Lua scripts behind ``queues.redis.RedisQueue`` (each runs atomically in Redis), and the
shapes of the stream replies it reads.

Every script takes the key prefix as ARGV[1] and builds the key names from it (``lane:{chat}``,
``ready:{platform}``, ``active``, ``queued``, ``admitted``, ``room``, ``seen:{update}``, and the
poller lease whose key ``enqueue`` is given), so the queue is for a single Redis server (with replicas or
Sentinel), not Redis Cluster. A ``{chat}`` or ``{update}`` is ``redis_client.scoped``: Telegram's
ids bare, another platform's as ``vk:5``, so the chats and updates of two platforms never share a
key, a greeting or a dialog. Each platform's turns have a stream of their own (``ready_key``:
``ready:telegram``, ``ready:vk``), always with the consumer group ``workers``. ``ready`` is where
versions before had every platform's turns (``LEGACY_READY``): nothing is added to it now, and a
script given a turn is given its stream too, so a turn read from there is acknowledged there,
and its chat's next turn goes to its platform's stream.

The invariant they keep together: a chat is in ``active`` exactly while ``lane:{chat}`` is not
empty, and then the streams hold exactly one entry (its turn) for it, new or pending with one
consumer. A turn's fields are ``chat`` and ``body``: the lane's head when the turn was added, which
stays the head while the turn lives (only the turn's owner pops it, and then adds a new turn), so
a worker reads its event from the turn, never from the lane; the lane stays the source of truth
(``done`` checks its head). ``queued`` = Σ over lanes of length, ``admitted`` = Σ over lanes of
min(length, share).

A turn's ``fresh`` field is ``1`` when its head has never been handed out: the turn was made by
``enqueue`` (the chat was idle, so its head is an update queued just now) or by ``done`` after it
popped the previous head (a lane is FIFO: an event becomes the head once). A turn made again for
the same head (``release``, or ``done`` finding another head) is ``0``. ``queues.redis`` builds on
this to skip the handled-id lookup for a first delivery.

``done`` (built per queue: ``redis_done``) also writes the handled mark it is given, and takes
the next turn for the worker that has just finished (XREADGROUP in a script never blocks), so a
steady worker makes one round trip per event. ``enqueue`` answers with the counts, and ``done``
leaves a token in ``room`` (the room, as a number) only when the poller's condition holds, so a
waiting poller wakes once (a token per platform: each platform's poller wakes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tgs3bot.queues.redis_turns import Turn
from tgs3bot.redis_client import text

GROUP = "workers"
LEGACY_READY = "ready"  # every platform's turns, before each had a stream: read to empty it
# add_turn: a new turn for ``chat`` at the end of its platform's stream (``ready_key``), carrying
# the lane's head as ``body`` (``fresh``: '1' if that head has never been handed out, else '0').
# pass_turn: the turn ``id`` of ``chat``, in ``stream``, is over. Acknowledge and delete it; if the
# lane still has events, the chat gets a new turn, else it stops being active (Redis has already
# deleted the empty list).
TURN_FUNCTIONS = """
local function add_turn(p, chat, head, fresh)
  local platform = string.match(chat, '^(%a+):') or 'telegram'
  redis.call('XADD', p .. 'ready:' .. platform, '*', 'chat', chat, 'body', head, 'fresh', fresh)
end
local function pass_turn(p, stream, chat, id, fresh)
  redis.call('XACK', stream, 'workers', id)
  redis.call('XDEL', stream, id)
  local head = redis.call('LINDEX', p .. 'lane:' .. chat, 0)
  if head then
    add_turn(p, chat, head, fresh)
  else
    redis.call('SREM', p .. 'active', chat)
  end
end
local function owns(stream, id, consumer)
  return #redis.call('XPENDING', stream, 'workers', id, id, 1, consumer) > 0
end
local function counts(p)
  return {tonumber(redis.call('GET', p .. 'admitted') or 0), tonumber(redis.call('GET', p .. 'queued') or 0)}
end
"""

# put_batch. ARGV: prefix, share, seen TTL (s), lease token or '', the lease's key (its platform's),
# the handled marks' key prefix (``state.redis.handled_prefix``), then (update, chat, body)...
# (update and chat ``redis_client.scoped``; an update's handled mark is that prefix and the update).
# Refuses everything (an error reply starting FENCED) unless the poller lease holds that token. An update
# seen before (a redelivery) or already handled is skipped; the others join their chat's lane in
# order, and a chat that was idle gets its turn (carrying its lane's head).
# Tokens left in ``room`` are dropped: the counts returned supersede them.
# Returns {events added, admitted, queued}.
ENQUEUE_LUA = (
    TURN_FUNCTIONS
    + """
local p, share, ttl, token = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if token ~= '' and redis.call('GET', p .. ARGV[5]) ~= token then
  return redis.error_reply('FENCED the poller lease is not held by this poller')
end
local added = 0
local handled = ARGV[6]
for i = 7, #ARGV, 3 do
  local update_id, chat, body = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('SET', p .. 'seen:' .. update_id, '1', 'NX', 'EX', ttl)
    and redis.call('EXISTS', handled .. update_id) == 0 then
    local lane = p .. 'lane:' .. chat
    if redis.call('RPUSH', lane, body) <= share then
      redis.call('INCR', p .. 'admitted')
    end
    redis.call('INCR', p .. 'queued')
    if redis.call('SADD', p .. 'active', chat) == 1 then
      add_turn(p, chat, redis.call('LINDEX', lane, 0), '1')
    end
    added = added + 1
  end
end
redis.call('DEL', p .. 'room')
local now = counts(p)
return {added, now[1], now[2]}
"""
)

# Hand a turn back untouched (a process leaving, an empty lane, a platform this process does not
# serve: its chat's new turn goes to its platform's stream). ARGV: prefix, stream, chat, id, consumer.
RELEASE_LUA = (
    TURN_FUNCTIONS
    + """
local p, stream, chat, id, consumer = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not owns(stream, id, consumer) then return 0 end
pass_turn(p, stream, chat, id, '0')
return 1
"""
)

# Heartbeat. ARGV: prefix, consumer, then (stream, turn id) pairs. Resets the idle time of each turn
# the consumer still owns (XCLAIM to itself, JUSTID); a plain XCLAIM would also take back a turn
# another worker has claimed meanwhile. Returns the ids no longer owned.
HEARTBEAT_LUA = (
    TURN_FUNCTIONS
    + """
local consumer = ARGV[2]
local lost = {}
for i = 3, #ARGV, 2 do
  local stream, id = ARGV[i], ARGV[i + 1]
  if owns(stream, id, consumer) then
    redis.call('XCLAIM', stream, 'workers', consumer, 0, id, 'JUSTID')
  else
    lost[#lost + 1] = id
  end
end
return lost
"""
)

# Forget consumers idle for longer than ARGV[2] ms that own nothing, in the streams ARGV[3...]. In
# a script, so a consumer cannot take a turn between the check and XGROUP DELCONSUMER (which would
# drop that turn from every pending list, and stall its chat for good). Returns how many were deleted.
PRUNE_CONSUMERS_LUA = """
local idle_ms = tonumber(ARGV[2])
local deleted = 0
for s = 3, #ARGV do
  for _, row in ipairs(redis.call('XINFO', 'CONSUMERS', ARGV[s], 'workers')) do
    local info = {}
    for i = 1, #row, 2 do info[row[i]] = row[i + 1] end
    if tonumber(info['pending']) == 0 and tonumber(info['idle']) > idle_ms then
      redis.call('XGROUP', 'DELCONSUMER', ARGV[s], 'workers', info['name'])
      deleted = deleted + 1
    end
  end
end
return deleted
"""

SCRIPTS = {
    "enqueue": ENQUEUE_LUA,
    "release": RELEASE_LUA,
    "heartbeat": HEARTBEAT_LUA,
    "prune": PRUNE_CONSUMERS_LUA,
}


def _field(fields: Mapping[Any, Any], name: str) -> str | None:
    value = fields.get(name, fields.get(name.encode()))
    return value.decode() if isinstance(value, bytes) else value


def ready_key(prefix: str, platform: str) -> str:
    """The stream of the platform's turns (the scripts' ``add_turn`` derives it from a chat)."""
    return f"{prefix}ready:{platform}"


def turn_of(entry_id: bytes | str, entry: Mapping[Any, Any], stream: str, *, fresh: bool) -> Turn:
    """The turn of an entry of ``stream`` (its fields as redis-py gives them). ``fresh``: read as a
    new entry (``>``), so its own ``fresh`` field counts; False for a claimed entry (handed out before)."""
    chat = _field(entry, "chat")
    if chat is None:
        raise ValueError(f"stream entry {entry_id!r} has no chat")
    first = fresh and _field(entry, "fresh") == "1"
    return Turn(text(entry_id), chat, _field(entry, "body") or "", first, stream=stream)


def new_turns(reply: Any) -> list[Turn]:
    """The turns of an XREADGROUP ``>`` reply (RESP2 or RESP3); COUNT is per stream, so one each."""
    if isinstance(reply, dict):  # RESP3: {stream: [[(id, fields), ...]]}
        batches = [(stream, entries) for stream, groups in reply.items() for entries in groups]
    else:  # RESP2: [[stream, [(id, fields), ...]]]
        batches = list(reply or ())
    return [
        turn_of(i, fields, text(stream), fresh=True) for stream, entries in batches for i, fields in entries
    ]

"""The Lua scripts behind ``queues.redis.RedisQueue`` (each runs atomically in Redis), and the
shapes of the stream replies it reads.

Every script takes the key prefix as ARGV[1] and builds the key names from it (``lane:{chat}``,
``ready``, ``active``, ``queued``, ``admitted``, ``room``, ``seen:{update_id}``, ``poller-lease``), so the
queue is for a single Redis server (with replicas or Sentinel), not Redis Cluster. The consumer
group on ``ready`` is always ``workers``.

The invariant they keep together: a chat is in ``active`` exactly while ``lane:{chat}`` is not
empty, and then ``ready`` holds exactly one entry (its turn) for it, new or pending with one
consumer. A turn's fields are ``chat`` and ``body``: the lane's head when the turn was added, which
stays the head while the turn lives (only the turn's owner pops it, and then adds a new turn), so
a worker reads its event from the turn, never from the lane; the lane stays the source of truth
(``done`` checks its head). ``queued`` = Σ over lanes of length, ``admitted`` = Σ over lanes of
min(length, share).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP = "workers"

# add_turn: a new turn for ``chat`` at the end of ``ready``, carrying the lane's head as ``body``.
# pass_turn: the turn ``id`` of ``chat`` is over. Acknowledge and delete it; if the lane still has
# events, the chat gets a new turn, else it stops being active (Redis has already deleted the
# empty list).
_TURN_FUNCTIONS = """
local function add_turn(p, chat, head)
  redis.call('XADD', p .. 'ready', '*', 'chat', chat, 'body', head)
end
local function pass_turn(p, chat, id)
  local ready = p .. 'ready'
  redis.call('XACK', ready, 'workers', id)
  redis.call('XDEL', ready, id)
  local head = redis.call('LINDEX', p .. 'lane:' .. chat, 0)
  if head then
    add_turn(p, chat, head)
  else
    redis.call('SREM', p .. 'active', chat)
  end
end
local function owns(p, id, consumer)
  return #redis.call('XPENDING', p .. 'ready', 'workers', id, id, 1, consumer) > 0
end
"""

# put_batch. ARGV: prefix, share, seen TTL (s), lease token or '', the lease's key (its platform's),
# then (update_id, chat, body)...
# Refuses everything (an error reply starting FENCED) unless the poller lease holds that token.
# An update seen before (a redelivery) is skipped; the others join their chat's lane in order, and
# a chat that was idle gets its turn (carrying its lane's head). Returns how many events were added.
ENQUEUE_LUA = (
    _TURN_FUNCTIONS
    + """
local p, share, ttl, token = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if token ~= '' and redis.call('GET', p .. ARGV[5]) ~= token then
  return redis.error_reply('FENCED the poller lease is not held by this poller')
end
local added = 0
for i = 6, #ARGV, 3 do
  local update_id, chat, body = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('SET', p .. 'seen:' .. update_id, '1', 'NX', 'EX', ttl) then
    local lane = p .. 'lane:' .. chat
    if redis.call('RPUSH', lane, body) <= share then
      redis.call('INCR', p .. 'admitted')
    end
    redis.call('INCR', p .. 'queued')
    if redis.call('SADD', p .. 'active', chat) == 1 then
      add_turn(p, chat, redis.call('LINDEX', lane, 0))
    end
    added = added + 1
  end
end
return added
"""
)

# task_done. ARGV: prefix, chat, turn id, consumer, the event's body, share.
# Returns -1 if the consumer no longer owns the turn (another worker claimed it: that one finishes
# the event, so nothing changes); 0 if the lane's head is not this event (the turn passes on, the
# lane is left alone); 1 once the head is popped and the turn passed on. A pop leaves a token in
# ``room`` for the poller blocked in ``wait_for_room``.
DONE_LUA = (
    _TURN_FUNCTIONS
    + """
local p, chat, id, consumer, body, share = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
if not owns(p, id, consumer) then return -1 end
local lane = p .. 'lane:' .. chat
if redis.call('LINDEX', lane, 0) ~= body then
  pass_turn(p, chat, id)
  return 0
end
if redis.call('LLEN', lane) <= share then
  redis.call('DECR', p .. 'admitted')
end
redis.call('DECR', p .. 'queued')
redis.call('LPOP', lane)
redis.call('LPUSH', p .. 'room', '1')
redis.call('LTRIM', p .. 'room', 0, 0)
pass_turn(p, chat, id)
return 1
"""
)

# Hand a turn back untouched (a process leaving, or an empty lane). ARGV: prefix, chat, id, consumer.
RELEASE_LUA = (
    _TURN_FUNCTIONS
    + """
local p, chat, id, consumer = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not owns(p, id, consumer) then return 0 end
pass_turn(p, chat, id)
return 1
"""
)

# Heartbeat. ARGV: prefix, consumer, turn ids... Resets the idle time of each turn the consumer
# still owns (XCLAIM to itself, JUSTID); a plain XCLAIM would also take back a turn another worker
# has claimed meanwhile. Returns the ids no longer owned.
HEARTBEAT_LUA = (
    _TURN_FUNCTIONS
    + """
local p, consumer = ARGV[1], ARGV[2]
local lost = {}
for i = 3, #ARGV do
  if owns(p, ARGV[i], consumer) then
    redis.call('XCLAIM', p .. 'ready', 'workers', consumer, 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)

# Forget consumers idle for longer than ARGV[2] ms that own nothing. In a script, so a consumer
# cannot take a turn between the check and XGROUP DELCONSUMER (which would drop that turn from
# every pending list, and stall its chat for good). Returns how many were deleted.
PRUNE_CONSUMERS_LUA = """
local p, idle_ms = ARGV[1], tonumber(ARGV[2])
local deleted = 0
for _, row in ipairs(redis.call('XINFO', 'CONSUMERS', p .. 'ready', 'workers')) do
  local info = {}
  for i = 1, #row, 2 do info[row[i]] = row[i + 1] end
  if tonumber(info['pending']) == 0 and tonumber(info['idle']) > idle_ms then
    redis.call('XGROUP', 'DELCONSUMER', p .. 'ready', 'workers', info['name'])
    deleted = deleted + 1
  end
end
return deleted
"""

SCRIPTS = {
    "enqueue": ENQUEUE_LUA,
    "done": DONE_LUA,
    "release": RELEASE_LUA,
    "heartbeat": HEARTBEAT_LUA,
    "prune": PRUNE_CONSUMERS_LUA,
}


def chat_of(fields: Mapping[Any, Any]) -> str:
    """The chat of a turn's stream entry, ``redis_client.scoped`` (decoded or not by the client)."""
    chat = fields.get("chat") or fields[b"chat"]
    return chat.decode() if isinstance(chat, bytes) else str(chat)


def body_of(fields: Mapping[Any, Any]) -> str:
    """The event a turn's stream entry carries ("" for an entry written without one)."""
    body = fields.get("body") or fields.get(b"body")
    return "" if body is None else (body.decode() if isinstance(body, bytes) else body)


def first_entry(reply: Any) -> tuple[str, str, str] | None:
    """(turn id, chat, body) of the first entry in an XREADGROUP reply, if any (RESP2 or RESP3)."""
    if isinstance(reply, dict):  # RESP3: {stream: [[(id, fields), ...]]}
        batches = [entries for groups in reply.values() for entries in groups]
    else:  # RESP2: [[stream, [(id, fields), ...]]]
        batches = [entries for _stream, entries in reply or ()]
    for entries in batches:
        for entry_id, fields in entries:
            entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            return entry, chat_of(fields), body_of(fields)
    return None

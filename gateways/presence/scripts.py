"""The Lua scripts of the presence registry: every mutation is one script, so two processes (or
two sweepers) never both report the same leave; `now` is the Redis server clock."""

from __future__ import annotations

from typing import Final

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: prefix, conn, ttl, then (topic, key, meta) triples. Returns the previous meta of each
# entry (false when new).
_TRACK = (
    _NOW
    + """
local p, conn, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local conns = p .. ':conns'
local cur = redis.call('ZSCORE', conns, conn)
if (not cur) or tonumber(cur) < now + ttl then redis.call('ZADD', conns, now + ttl, conn) end
local ck = p .. ':c:' .. conn
local olds = {}
for i = 4, #ARGV, 3 do
  local topic, key, meta = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local tk = p .. ':t:' .. topic
  local field = key .. '|' .. conn
  olds[#olds + 1] = redis.call('HGET', tk, field)
  redis.call('HSET', tk, field, meta)
  redis.call('HSET', ck, topic .. '\\n' .. key, '1')
end
return olds
"""
)

_UNTRACK = """
local p, topic, key, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local tk = p .. ':t:' .. topic
local field = key .. '|' .. conn
local old = redis.call('HGET', tk, field)
if not old then return false end
redis.call('HDEL', tk, field)
local ck = p .. ':c:' .. conn
redis.call('HDEL', ck, topic .. '\\n' .. key)
if redis.call('HLEN', ck) == 0 then
  redis.call('DEL', ck)
  redis.call('ZREM', p .. ':conns', conn)
end
return old
"""

# Removes every entry of a connection; appends (topic, key, meta) triples to `out`.
_DROP = """
local function drop(p, conn, out)
  local ck = p .. ':c:' .. conn
  for _, f in ipairs(redis.call('HKEYS', ck)) do
    local nl = string.find(f, '\\n', 1, true)
    local topic = string.sub(f, 1, nl - 1)
    local key = string.sub(f, nl + 1)
    local tk = p .. ':t:' .. topic
    local hf = key .. '|' .. conn
    local meta = redis.call('HGET', tk, hf)
    if meta then
      redis.call('HDEL', tk, hf)
      out[#out + 1] = topic
      out[#out + 1] = key
      out[#out + 1] = meta
    end
  end
  redis.call('DEL', ck)
  redis.call('ZREM', p .. ':conns', conn)
end
"""

_UNTRACK_ALL = (
    _DROP
    + """
local out = {}
drop(ARGV[1], ARGV[2], out)
return out
"""
)

# Returns {number of dead conns, topic, key, meta, topic, key, meta, ...}.
_SWEEP = (
    _NOW
    + _DROP
    + """
local p, limit = ARGV[1], tonumber(ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', p .. ':conns', '-inf', '(' .. now, 'LIMIT', 0, limit)
local out = {#dead}
for _, conn in ipairs(dead) do drop(p, conn, out) end
return out
"""
)

# Extends the deadline of live conns; returns the ones Redis no longer knows (swept while this
# process stalled, or Redis restarted) so their tracker can re-register its entries.
_REFRESH = (
    _NOW
    + """
local p, ttl = ARGV[1], tonumber(ARGV[2])
local conns = p .. ':conns'
local missing = {}
for i = 3, #ARGV do
  local c = ARGV[i]
  if redis.call('ZSCORE', conns, c) then
    redis.call('ZADD', conns, now + ttl, c)
  else
    missing[#missing + 1] = c
  end
end
return missing
"""
)

# For each topic in ARGV[2..]: {key, meta, key, meta, ...} of the entries whose conn is alive.
_LIST = (
    _NOW
    + """
local p = ARGV[1]
local conns = p .. ':conns'
local alive = {}
local result = {}
for i = 2, #ARGV do
  local h = redis.call('HGETALL', p .. ':t:' .. ARGV[i])
  local out = {}
  for j = 1, #h, 2 do
    local f = h[j]
    local sep = string.find(f, '|[^|]*$')
    local conn = string.sub(f, sep + 1)
    local a = alive[conn]
    if a == nil then
      local s = redis.call('ZSCORE', conns, conn)
      a = (s ~= false) and (tonumber(s) >= now)
      alive[conn] = a
    end
    if a then
      out[#out + 1] = string.sub(f, 1, sep - 1)
      out[#out + 1] = h[j + 1]
    end
  end
  result[#result + 1] = out
end
return result
"""
)

SCRIPTS: Final = {
    "track": _TRACK,
    "untrack": _UNTRACK,
    "untrack_all": _UNTRACK_ALL,
    "sweep": _SWEEP,
    "refresh": _REFRESH,
    "list": _LIST,
}

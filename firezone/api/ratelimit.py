"""The REST API's rate limit (portal.md §5.1): a token bucket per account, in Redis.

Capacity `API_CAPACITY` (200), refilled at `API_REFILL_RATE` per second (10), each request costs
`COST` (10): a burst of 20 requests, then one per second. One Lua script reads, refills and
spends atomically with Redis' own clock, so every web process shares the bucket (the original
synced its buckets between nodes over pub/sub). Checked after authentication (DRF throttles run
after it), so unauthenticated requests cost nothing and are answered 401.

An unreachable Redis lets requests through, as the sign-in limits do (firezone/web/ratelimit.py):
the API must not go down with the cache.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.auth import Subject

logger = logging.getLogger(__name__)

COST = 10
PREFIX = "fz:api:bucket:"

# KEYS[1] bucket; ARGV capacity, refill per second, cost. Returns 1 (allowed) or 0.
# The bucket is a hash {tokens, ts}; it expires once it would be full again anyway.
_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
local ttl = 1
if rate > 0 then
  ttl = math.ceil(capacity / rate) + 1
else
  ttl = 86400
end
redis.call('EXPIRE', KEYS[1], ttl)
return allowed
"""

_clients: dict[str, Any] = {}


def _script() -> Any:
    """The registered script on a client of REDIS_URL (one per URL: tests switch databases)."""
    url = str(settings.REDIS_URL)
    script = _clients.get(url)
    if script is None:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        script = _clients[url] = client.register_script(_SCRIPT)
    return script


def spend(account_id: Any, *, cost: int = COST) -> bool:
    """Take `cost` tokens from the account's bucket; False when it holds fewer."""
    try:
        allowed = _script()(
            keys=[f"{PREFIX}{account_id}"],
            args=[settings.API_CAPACITY, settings.API_REFILL_RATE, cost],
        )
    except redis.RedisError:
        logger.warning("API rate limit unavailable", exc_info=True)
        return True
    return bool(allowed)


class AccountRateLimit(BaseThrottle):
    """DRF throttle: one bucket per authenticated account; 429 with `Retry-After: 1`."""

    def allow_request(self, request: Request, view: Any) -> bool:
        subject = request.auth
        if not isinstance(subject, Subject):
            return True  # unauthenticated: answered 401 by the permission check
        return spend(subject.account_id)

    def wait(self) -> float:
        return 1

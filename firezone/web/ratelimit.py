"""Counters for the sign-in rate limits, in the shared cache (Redis), so every web process
counts together.

A `Limit` allows `limit` hits per `window` seconds for one key. With `sliding=True` every hit
pushes the window out again (the original's email limiter: a caller that keeps trying stays
limited). Keys are hashed, so emails and usernames never appear in the cache in clear text.
Cache failures allow the request: an unavailable Redis must not lock everyone out (the other
safeguards — the 3 attempts per code, constant-time answers — still hold).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.core.cache import cache

logger = logging.getLogger(__name__)

PREFIX = "fz:rl:"


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window: int  # seconds
    sliding: bool = False

    def key(self, *parts: object) -> str:
        digest = hashlib.sha256("\x1f".join(str(p).lower() for p in parts).encode()).hexdigest()
        return f"{PREFIX}{self.name}:{digest[:40]}"

    def hit(self, *parts: object) -> bool:
        """Count one hit; True while the key is within its limit (this hit included)."""
        key = self.key(*parts)
        try:
            cache.add(key, 0, self.window)
            count = cache.incr(key)
            if self.sliding:
                cache.touch(key, self.window)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, self.window)
            count = 1
        except Exception:
            logger.warning("rate limit %s unavailable", self.name, exc_info=True)
            return True
        return count <= self.limit

    def exceeded(self, *parts: object) -> bool:
        """Whether the key is already over its limit (without counting a hit)."""
        try:
            count = cache.get(self.key(*parts)) or 0
        except Exception:
            logger.warning("rate limit %s unavailable", self.name, exc_info=True)
            return False
        return int(count) >= self.limit

    def reset(self, *parts: object) -> None:
        try:
            cache.delete(self.key(*parts))
        except Exception:
            logger.warning("rate limit %s unavailable", self.name, exc_info=True)


# Email code requests: 3 per email (= per identity) per 5 minutes, window extended on each hit
# (portal.md §3.6), and a per-IP cap against spraying many addresses.
EMAIL_REQUESTS_PER_IDENTITY = Limit("email_req_id", 3, 5 * 60, sliding=True)
EMAIL_REQUESTS_PER_IP = Limit("email_req_ip", 20, 5 * 60)
# Code verification: per IP, and per email (the token itself allows 3 attempts per code).
EMAIL_VERIFY_PER_IP = Limit("email_verify_ip", 20, 5 * 60)
EMAIL_VERIFY_PER_IDENTITY = Limit("email_verify_id", 10, 15 * 60)
# Username/password: failed attempts per IP+username and per IP.
USERPASS_FAILURES_PER_USER = Limit("userpass_user", 5, 15 * 60)
USERPASS_FAILURES_PER_IP = Limit("userpass_ip", 30, 15 * 60)

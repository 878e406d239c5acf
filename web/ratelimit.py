"""Sliding-window rate limits (login attempts, listener registrations), in memory, per process.

Pure apart from the clock, which is injected (``time.monotonic`` by default) so that tests can use a
fake one.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from aiohttp import web

from devices.errors import RateLimitedError

__all__ = ["LOGIN_LIMITER", "REGISTRATION_LIMITER", "RateLimited", "RateLimiter"]


class RateLimited(RateLimitedError):
    """Too many attempts; try again later."""

    title_ko = "시도가 너무 많습니다. 잠시 후 다시 시도하세요"


class RateLimiter:
    """At most ``limit`` hits per key within ``window_s`` seconds."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def retry_after_s(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        if self.limit <= 0:
            return 0.0
        now = self._clock()
        hits = self._recent(key, now)
        if len(hits) < self.limit:
            return 0.0
        return max(hits[0] + self.window_s - now, 0.001)

    def check(self, key: str) -> None:
        """Raise :class:`RateLimited` (with ``retry_after_s``) when ``key`` is over its limit."""
        wait = self.retry_after_s(key)
        if wait > 0:
            raise RateLimited(
                f"too many attempts; try again in {math.ceil(wait)} s",
                retry_after_s=math.ceil(wait),
            )

    def hit(self, key: str) -> None:
        """Record one hit for ``key``."""
        if self.limit <= 0:
            return
        now = self._clock()
        if len(self._hits) >= self._max_keys:
            self._evict(now)
        self._recent(key, now)
        self._hits.setdefault(key, deque()).append(now)

    def reset(self, key: str) -> None:
        """Forget ``key``'s hits (e.g. after a successful login)."""
        self._hits.pop(key, None)

    def _evict(self, now: float) -> None:
        for key in list(self._hits):
            self._recent(key, now)
        while len(self._hits) >= self._max_keys:
            self._hits.pop(next(iter(self._hits)))


LOGIN_LIMITER = web.AppKey("login_limiter", RateLimiter)
REGISTRATION_LIMITER = web.AppKey("registration_limiter", RateLimiter)

"""Sliding-window rate limits (login attempts, listener registrations), in memory, per process.

Pure apart from the clock, which is injected (``time.monotonic`` by default) so that tests can use a
fake one. Limits key on the client's address: the peer's, or from ``X-Forwarded-For`` when the peer
is one of ``VILLAGECAST_TRUSTED_PROXIES`` (:func:`forwarded_middleware`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from devices.errors import RateLimitedError

__all__ = [
    "LOGIN_GUARD",
    "REGISTRATION_LIMITER",
    "LoginGuard",
    "RateLimited",
    "RateLimiter",
    "client_address",
    "forwarded_middleware",
    "parse_networks",
]


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

    def count(self, key: str) -> int:
        """Hits of ``key`` within the window."""
        return len(self._recent(key, self._clock()))

    def reset(self, key: str) -> None:
        """Forget ``key``'s hits (e.g. after a successful login)."""
        self._hits.pop(key, None)

    def _evict(self, now: float) -> None:
        for key in list(self._hits):
            self._recent(key, now)
        while len(self._hits) >= self._max_keys:
            self._hits.pop(next(iter(self._hits)))


class LoginsBusy(RateLimitedError):
    """Too many logins at once; try again in a moment."""

    title_ko = "로그인 요청이 몰리고 있습니다. 잠시 후 다시 시도하세요"


class LoginGuard:
    """What stands between a login attempt and its (64 MiB, ~0.1 s) Argon2 hash.

    * per address, whatever the username: ``per_address`` attempts a minute (random usernames
      are limited as well, and cost no hash once over);
    * per (username, address): ``per_pair`` failures a minute (a success forgets them);
    * per username, from anywhere: no lock, only a soft delay growing with the failures of the
      last minute (at most :attr:`MAX_DELAY_S`), so a flood from many addresses slows an
      attacker down but cannot lock the real user out;
    * at most ``hash_slots`` hashes at once, and a bounded queue for them (``429`` beyond it).
    """

    MAX_DELAY_S = 2.0
    DELAY_STEP_S = 0.1

    def __init__(
        self,
        per_pair: int,
        per_address: int,
        hash_slots: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pair = RateLimiter(per_pair, 60.0, clock)
        self.address = RateLimiter(per_address, 60.0, clock)
        self.username = RateLimiter(1_000_000, 60.0, clock, max_keys=10_000)
        self.per_pair = per_pair
        self.hash_slots = max(hash_slots, 1)
        self.max_waiting = self.hash_slots * 8
        self._slots = asyncio.Semaphore(self.hash_slots)
        self.waiting = 0
        self.hashing = 0
        self.peak_hashing = 0

    def admit(self, username: str, address: str) -> str:
        """Count one attempt or raise :class:`RateLimited`; the key to :meth:`succeeded` with."""
        self.address.check(address)
        pair = f"{username.lower()}|{address}"
        self.pair.check(pair)
        self.address.hit(address)
        self.pair.hit(pair)  # forgotten again on success: only failures accumulate
        return pair

    def delay_s(self, username: str) -> float:
        """The soft delay of a username under attack (0 while it is not)."""
        excess = self.username.count(username.lower()) - max(self.per_pair, 1)
        return min(max(excess, 0) * self.DELAY_STEP_S, self.MAX_DELAY_S)

    def failed(self, username: str) -> None:
        """Record a failed password for the username (from any address)."""
        self.username.hit(username.lower())

    def succeeded(self, pair: str) -> None:
        """Forget the failures of this (username, address)."""
        self.pair.reset(pair)

    @contextlib.asynccontextmanager
    async def hashing_slot(self) -> AsyncIterator[None]:
        """One of the bounded password-hash slots (:class:`LoginsBusy` when the queue is full)."""
        if self.waiting >= self.max_waiting:
            raise LoginsBusy("too many logins at once; try again in a second", retry_after_s=1)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.hashing += 1
        self.peak_hashing = max(self.peak_hashing, self.hashing)
        try:
            yield
        finally:
            self.hashing -= 1
            self._slots.release()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str) -> tuple[Network, ...]:
    """A comma-separated CIDR list (``10.0.0.0/8, 127.0.0.1``); ValueError names a bad entry."""
    out = []
    for item in raw.replace(" ", "").split(","):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an address or CIDR network") from None
    return tuple(out)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str, forwarded_for: str, networks: Sequence[Network]) -> str:
    """The real client: ``X-Forwarded-For`` read right to left past trusted proxies only.

    A peer outside ``networks`` is the client whatever it claims; so is the first hop (from the
    right) that is not a trusted proxy, and a malformed entry stops the walk at the last proxy.
    """
    if not networks or not _trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not _trusted(hop, networks):
            return hop
    return client


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def forwarded_middleware(networks: Sequence[Network]) -> Callable[..., Awaitable[Any]]:
    """A middleware that sets ``request.remote`` to the real client behind trusted proxies."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded and networks and request.remote:
            real = client_address(request.remote, forwarded, networks)
            if real != request.remote:
                request = request.clone(remote=real)
        return await handler(request)

    return middleware


LOGIN_GUARD = web.AppKey("login_guard", LoginGuard)
REGISTRATION_LIMITER = web.AppKey("registration_limiter", RateLimiter)

"""Connection limits: descriptors, stream connections per token and per address, log floods.

A crowd of stream listeners must never take the descriptors that the API, the console and the
database need: streams are capped at the descriptor limit minus a reserve (and per token and per
client address); the listener over a cap gets a clear 503 problem. Stream handlers take a slot
with the :func:`stream_slot` decorator, which releases it when the handler ends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from devices.errors import UnavailableError

from .keys import SETTINGS
from .logs import LogThrottle

__all__ = ["STREAM_LIMITS", "StreamLimits", "StreamsFull", "raise_nofile_limit", "stream_slot"]

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30  # a player retrying a full server: not at once


class StreamsFull(UnavailableError):
    """No stream connection is free right now; try again later."""

    title_ko = "지금은 스트림 연결이 가득 찼습니다. 잠시 후 다시 시도하세요"


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft descriptor limit to the hard one (systemd's default soft limit is 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the descriptor limit from %d: %s", soft, exc)
    new_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    log.info("descriptor limit: %d (was %d, hard limit %d)", new_soft, soft, hard)
    return new_soft, hard


class StreamLimits:
    """Counts open stream connections: in all, per token and per client address."""

    def __init__(self, max_streams: int, per_token: int, per_address: int) -> None:
        self.max_streams = max_streams
        self.per_token = per_token
        self.per_address = per_address
        self.open = 0
        self.refused = 0
        self._tokens: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()

    def acquire(self, token: str, address: str) -> None:
        """Take a slot or raise :class:`StreamsFull` (a 503 with ``Retry-After``)."""
        why = ""
        if self.open >= self.max_streams:
            why = f"this server carries at most {self.max_streams} streams"
        elif token and self.per_token and self._tokens[token] >= self.per_token:
            why = f"this token holds {self.per_token} streams already"
        elif self.per_address and self._addresses[address] >= self.per_address:
            why = f"this address holds {self.per_address} streams already"
        if why:
            self.refused += 1
            raise StreamsFull(why, retry_after_s=RETRY_AFTER_S)
        self.open += 1
        self._tokens[token] += 1
        self._addresses[address] += 1

    def release(self, token: str, address: str) -> None:
        """Give a slot back."""
        self.open -= 1
        for counter, key in ((self._tokens, token), (self._addresses, address)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]


STREAM_LIMITS = web.AppKey("stream_limits", StreamLimits)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def stream_slot(handler: Handler) -> Handler:
    """Decorate a long-lived stream handler: a slot is held while it runs (503 when none)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        limits = request.app[STREAM_LIMITS]
        token = request.headers.get("Authorization", "") or request.query.get("token", "")
        address = request.remote or "?"
        limits.acquire(token, address)
        try:
            return await handler(request)
        finally:
            limits.release(token, address)

    return wrapped


def _stream_capacity(max_streams: int, fd_reserve: int) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    capacity = max(soft - fd_reserve, 1)
    return min(max_streams, capacity) if max_streams > 0 else capacity


def _throttled_exception_handler(
    throttle: LogThrottle,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """Loop errors (e.g. ``accept()`` failing at the descriptor limit) at most a few a window."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        key = str(context.get("message", "loop error"))[:80]
        allowed, suppressed = throttle.allow(key)
        if suppressed:
            log.error("%s: %d more like it in the last %g s", key, suppressed, throttle.window_s)
        if allowed:
            loop.default_exception_handler(context)

    return handle


async def _loop_errors(app: web.Application) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(_throttled_exception_handler(LogThrottle()))
    yield
    loop.set_exception_handler(previous)


def setup(app: web.Application) -> None:
    """Create the stream limits (from the descriptor limit) and throttle loop error logs."""
    from .system import METRICS  # system imports events_api, which imports this module

    settings = app[SETTINGS]
    app[STREAM_LIMITS] = StreamLimits(
        _stream_capacity(settings.max_streams, settings.fd_reserve),
        settings.streams_per_token,
        settings.streams_per_address,
    )
    app.cleanup_ctx.append(_loop_errors)
    limits = app[STREAM_LIMITS]
    app[METRICS].gauge(
        "villagecast_streams_open",
        "Open long-lived connections (MP3, Ogg, source, events) and the cap.",
        lambda: [({"kind": "open"}, float(limits.open)), ({"kind": "cap"}, limits.max_streams)],
    )
    app[METRICS].gauge(
        "villagecast_streams_refused_total",
        "Stream connections refused at a cap (total, per token or per address).",
        lambda: [({}, float(limits.refused))],
    )

"""Who holds the streams: a short-lived token cache and every open stream by its client.

Revoking a token (or deleting its device or listener) calls :func:`cut_client`: it ends the
client's open MP3 and Ogg connections and WebRTC listens at once and forgets its cached token,
so that an HLS player's next segment fetch is refused. A revocation made elsewhere (the CLI,
another node) is found by :func:`recheck` within :data:`RECHECK_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal

from aiohttp import web

from devices import store
from devices.errors import BadToken
from devices.models import Device, Listener, Region
from streaming.errors import WrongVillage

from .auth import stream_client, stream_token
from .keys import ONAIR, SESSIONMAKER

__all__ = [
    "OPEN_STREAMS",
    "ClientKind",
    "OpenStreams",
    "cached_client",
    "cut_client",
    "feed_access",
    "recheck",
    "setup",
]

log = logging.getLogger(__name__)

ClientKind = Literal["device", "listener"]

# A stream token, once checked, is trusted this long without another database query, so that a
# crowd reconnecting at once costs no query each (revocation empties it: see cut_client).
CLIENT_CACHE_S = 5.0
CLIENT_CACHE_SIZE = 20_000

# Revocations this process did not make (the CLI, another node) are found this often.
RECHECK_S = 2.0

_CLIENTS = web.AppKey("stream_clients", dict[str, tuple[float, Device | Listener]])
_INFLIGHT = web.AppKey("stream_client_lookups", dict[str, "asyncio.Future[Device | Listener]"])


def kind_of(client: Device | Listener) -> ClientKind:
    """The kind of a stream client."""
    return "device" if isinstance(client, Device) else "listener"


class OpenStreams:
    """Every open stream connection by its client, each with a callback that ends it."""

    def __init__(self) -> None:
        self._open: dict[tuple[ClientKind, int], set[Callable[[str], None]]] = {}

    def add(self, client: Device | Listener, close: Callable[[str], None]) -> Callable[[], None]:
        """Register an open stream; returns the function that unregisters it."""
        key = (kind_of(client), client.id)
        self._open.setdefault(key, set()).add(close)

        def remove() -> None:
            closers = self._open.get(key)
            if closers is not None:
                closers.discard(close)
                if not closers:
                    del self._open[key]

        return remove

    def clients(self, kind: ClientKind) -> set[int]:
        """The ids of the clients of a kind that hold a stream open."""
        return {cid for k, cid in self._open if k == kind}

    def count(self, kind: ClientKind, client_id: int) -> int:
        """How many streams this client holds open."""
        return len(self._open.get((kind, client_id), ()))

    def close(self, kind: ClientKind, client_id: int, reason: str) -> int:
        """End every open stream of a client; how many there were."""
        closers = self._open.pop((kind, client_id), set())
        for close in closers:
            try:
                close(reason)
            except Exception:
                log.exception("closing a stream of %s %s failed", kind, client_id)
        return len(closers)


OPEN_STREAMS = web.AppKey("open_streams", OpenStreams)


async def cached_client(request: web.Request) -> Device | Listener:
    """The device or listener of the request's token, from a short-lived cache when possible."""
    token = stream_token(request)
    if token is None:
        return await stream_client(request)
    cache = request.app[_CLIENTS]
    if (hit := cache.get(token)) is not None and hit[0] > time.monotonic():
        return hit[1]
    # a crowd with one token arriving at once waits for one query, not one query each
    inflight = request.app[_INFLIGHT]
    pending = inflight.get(token)
    if pending is None:
        pending = inflight[token] = asyncio.ensure_future(stream_client(request))
        pending.add_done_callback(lambda _: inflight.pop(token, None))
    client = await asyncio.shield(pending)
    if len(cache) >= CLIENT_CACHE_SIZE:
        cache.clear()
    cache[token] = (time.monotonic() + CLIENT_CACHE_S, client)
    return client


async def cut_client(app: web.Application, kind: ClientKind, client_id: int) -> int:
    """End what a revoked device or listener has open (streams, WebRTC listens, cached token)."""
    cache = app[_CLIENTS]
    for token, (_, client) in list(cache.items()):
        if kind_of(client) == kind and client.id == client_id:
            del cache[token]
    closed = app[OPEN_STREAMS].close(kind, client_id, "token revoked")
    if kind == "listener":
        closed += await _close_webrtc_listens(app, client_id)
    if closed:
        log.info("revoked %s %s: closed %d open stream(s)", kind, client_id, closed)
    return closed


def _webrtc_listener_ids(app: web.Application) -> set[int]:
    onair = app.get(ONAIR)
    return set() if onair is None else onair.live.listener_ids


async def _close_webrtc_listens(app: web.Application, listener_id: int) -> int:
    onair = app.get(ONAIR)
    return 0 if onair is None else await onair.live.close_listener(listener_id)


async def feed_access(request: web.Request, village: Region) -> Device | Listener | None:
    """Who reads a village's feed: None for the public, else the token's client (401/403).

    A village that approves its listeners has no public feed: only its own approved listeners
    and speaker boxes read it; a pending listener gets nothing.
    """
    token = stream_token(request)
    client = await stream_client(request) if token is not None else None
    if village.requires_listener_approval:
        if client is None:
            raise BadToken("this village's feed needs an approved listener's token (?token=)")
        if client.village_code != village.code:
            raise WrongVillage(f"this token listens to {client.village_code!r} only")
    return client


async def recheck(app: web.Application) -> int:
    """Cut the open streams of clients revoked elsewhere (the CLI, another node, the database)."""
    registry = app[OPEN_STREAMS]
    devices = registry.clients("device")
    listeners = registry.clients("listener") | _webrtc_listener_ids(app)
    if not devices and not listeners:
        return 0
    async with app[SESSIONMAKER]() as session:
        gone_devices, gone_listeners = await store.revoked_among(session, devices, listeners)
    closed = 0
    for device_id in gone_devices:
        closed += await cut_client(app, "device", device_id)
    for listener_id in gone_listeners:
        closed += await cut_client(app, "listener", listener_id)
    return closed


async def _recheck_loop(app: web.Application) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            await asyncio.sleep(RECHECK_S)
            try:
                await recheck(app)
            except Exception as exc:  # a database outage must not end the streams
                log.warning("re-checking open stream clients failed: %s", exc)

    task = asyncio.create_task(loop(), name="stream-client-recheck")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    """Create the token cache, the open-stream registry and its periodic re-check."""
    app[_CLIENTS] = {}
    app[_INFLIGHT] = {}
    app[OPEN_STREAMS] = OpenStreams()
    app.cleanup_ctx.append(_recheck_loop)

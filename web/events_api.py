"""``GET /api/v1/events``: the app's event bus over a WebSocket, for the console, phones and boxes.

Staff (cookie or API token) receive the events of the regions they may see (a county admin: all;
a village head: their village), optionally narrowed by ``?village=``; a listener or speaker token
receives only its own village's ``broadcast.*`` events. Each socket has its own bounded queue, so
a slow client only ever delays itself; when its queue overflowed it receives one
``{"type": "events.lost"}`` before the next event.

A browser's socket must come from this server's own origin (or a configured one). Every
:data:`REVALIDATE_S` seconds one sweep checks the credentials of every open socket in a few
batched queries: a disabled account, a revoked token or an ended login closes its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web
from sqlalchemy import select

from devices import policy, store
from devices.errors import ForbiddenError, NotPermitted
from devices.events import Event, Subscription
from devices.models import Account, ApiToken, Device, Listener, LoginSession
from devices.orm import utcnow
from devices.tokens import hash_token

from .auth import SESSION_COOKIE, bearer_token, require_account, stream_client
from .keys import EVENTS, SESSIONMAKER, SETTINGS
from .limits import stream_slot

__all__ = ["accepts_for_village", "events", "setup"]

log = logging.getLogger(__name__)

SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("event_sockets")
QUEUE_SIZE = 256
REVALIDATE_S = 2.0  # a revoked credential's socket closes within this (plus one sweep)
CLOSE_REVOKED = 4401  # application close code: the credential is no longer valid


class ForeignOrigin(ForbiddenError):
    """This page's origin may not open the events socket."""

    title_ko = "허용되지 않은 출처(Origin)에서의 연결입니다"


@dataclass(frozen=True, slots=True)
class Principal:
    """What an open socket was authorised with, to check again while it stays open."""

    kind: str  # "token" (staff API token), "login" (staff cookie), "device", "listener"
    key: str | int  # token or cookie hash, or the device / listener id
    account_id: int | None = None


_PRINCIPALS = web.AppKey("event_principals", weakref.WeakKeyDictionary[Any, Principal])
_SWEEPER = web.AppKey("event_sweeper", asyncio.Task[None])

Accept = Callable[[Event], bool]


def accepts_for_village(village: str, device_id: int | None = None) -> Accept:
    """The filter of a listener or speaker box: its village's ``broadcast.*`` events."""

    def accept(event: Event) -> bool:
        kind = str(event.get("type", ""))
        if (
            device_id is not None
            and kind.startswith("device.")
            and event.get("device_id") == device_id
        ):
            return True
        if not kind.startswith("broadcast."):
            return False
        return event.get("village") == village or village in (event.get("villages") or ())

    return accept


def _villages_of(event: Event) -> set[str]:
    villages = set(event.get("villages") or ())
    if event.get("village"):
        villages.add(str(event["village"]))
    return villages


def _private_to(account_id: int, accept: Accept) -> Accept:
    """Events addressed to some accounts (``account_ids``: notices) reach only those accounts."""

    def wrapped(event: Event) -> bool:
        ids = event.get("account_ids")
        if ids is not None:
            return account_id in ids
        return accept(event)

    return wrapped


def _accepts_staff(village: str | None, visible: frozenset[str] | None) -> Accept:
    """Events of ``village`` (or all), within the regions the staff member may see."""

    def accept(event: Event) -> bool:
        villages = _villages_of(event)
        if village and village not in villages:
            return False
        return visible is None or bool(villages & visible)

    return accept


def _check_origin(request: web.Request) -> None:
    """A browser's socket comes from this server's own origin or a configured one."""
    origin = request.headers.get("Origin")
    if origin is None:
        return  # not a browser (a speaker box, a script): its token is what counts
    settings = request.app[SETTINGS]
    allowed = {f"{request.scheme}://{request.host}".lower()}
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}".lower())
    allowed |= {o.strip().rstrip("/").lower() for o in settings.allowed_origins.split(",") if o}
    if origin.rstrip("/").lower() not in allowed:
        raise ForeignOrigin(f"origin {origin!r} may not open this socket")


async def _scope(request: web.Request) -> tuple[dict[str, Any], Accept, Principal]:
    """Who is asking, and which events they may receive (401/403 problems before the upgrade)."""
    _check_origin(request)
    token = request.query.get("token") or bearer_token(request)
    if token:
        async with request.app[SESSIONMAKER]() as session:
            account = await store.account_by_api_token(session, token)
            await session.commit()
        if account is None:
            client = await stream_client(request)
            device_id = client.id if isinstance(client, Device) else None
            hello: dict[str, Any] = {"scope": "village", "village": client.village_code}
            kind = "device" if isinstance(client, Device) else "listener"
            principal = Principal(kind, client.id)
            return hello, accepts_for_village(client.village_code, device_id), principal
        principal = Principal("token", hash_token(token), account.id)
    else:
        account = await require_account(request)
        principal = Principal(
            "login", hash_token(request.cookies.get(SESSION_COOKIE, "")), account.id
        )
    visible: frozenset[str] | None = None
    if account.role != "admin":
        async with request.app[SESSIONMAKER]() as session:
            visible = policy.visible_regions(account, await store.load_tree(session))
    village = request.query.get("village") or None
    if village is not None and visible is not None and village not in visible:
        raise NotPermitted(f"your account does not see the events of {village!r}")
    hello = {"scope": "staff", "village": village, "region": account.region_code}
    return hello, _private_to(account.id, _accepts_staff(village, visible)), principal


def _dumps(event: Event) -> str:
    return json.dumps(event, ensure_ascii=False, default=str)


async def _pump(ws: web.WebSocketResponse, sub: Subscription, accept: Accept) -> None:
    while not ws.closed:
        event = await sub.queue.get()
        if sub.overflowed:
            sub.overflowed = False
            await ws.send_str(_dumps({"type": "events.lost"}))
        if accept(event):
            await ws.send_str(_dumps(event))


@stream_slot
async def events(request: web.Request) -> web.WebSocketResponse:
    """Live events over a WebSocket: broadcasts started and ended, devices online and offline."""
    hello, accept, principal = await _scope(request)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    sub = request.app[EVENTS].subscribe(QUEUE_SIZE)
    request.app[SOCKETS].add(ws)
    request.app[_PRINCIPALS][ws] = principal
    pump = asyncio.create_task(_pump(ws, sub, accept))
    try:
        await ws.send_str(_dumps({"type": "hello", **hello}))
        async for msg in ws:  # reading handles pings and the close handshake
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str(_dumps({"type": "pong"}))
    finally:
        sub.close()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await pump
        request.app[SOCKETS].discard(ws)
    return ws


CHUNK = 2000  # ids per IN (...) list: well inside SQLite's and PostgreSQL's parameter limits


async def _valid(app: web.Application, principals: set[Principal]) -> set[Principal]:
    """The principals that still hold: a few batched read-only queries for all open sockets."""
    now = utcnow()
    checks: dict[str, tuple[Any, Any]] = {
        "account": (Account.id, Account.disabled.is_(False)),
        "token": (ApiToken.token_hash, ApiToken.revoked_at.is_(None)),
        "login": (LoginSession.token_hash, LoginSession.expires_at > now),
        "device": (Device.id, Device.revoked_at.is_(None)),
        "listener": (Listener.id, Listener.status == "active"),
    }
    wanted: dict[str, set[Any]] = {kind: set() for kind in checks}
    for p in principals:
        wanted[p.kind].add(p.key)
        if p.account_id is not None:
            wanted["account"].add(p.account_id)
    ok: set[tuple[str, Any]] = set()
    async with app[SESSIONMAKER]() as session:
        for kind, (column, still_valid) in checks.items():
            keys = sorted(wanted[kind], key=str)
            for i in range(0, len(keys), CHUNK):
                query = select(column).where(column.in_(keys[i : i + CHUNK]), still_valid)
                ok |= {(kind, key) for key in await session.scalars(query)}
    return {
        p
        for p in principals
        if (p.kind, p.key) in ok and (p.account_id is None or ("account", p.account_id) in ok)
    }


async def _sweep(app: web.Application) -> None:
    """Close every socket whose account, token or login no longer holds."""
    open_sockets = dict(app[_PRINCIPALS].items())
    if not open_sockets:
        return
    valid = await _valid(app, set(open_sockets.values()))
    for ws, principal in open_sockets.items():
        if principal not in valid and not ws.closed:
            await ws.close(code=CLOSE_REVOKED, message=b"credential revoked")


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    async def run() -> None:
        while True:
            await asyncio.sleep(REVALIDATE_S)
            try:
                await _sweep(app)
            except Exception:  # e.g. a database outage: keep the sockets, try again
                log.warning("events: could not check open sockets", exc_info=True)

    app[_SWEEPER] = asyncio.create_task(run(), name="event-socket-sweeper")
    yield
    app[_SWEEPER].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[_SWEEPER]


async def _close_sockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def setup(app: web.Application) -> None:
    """Register ``GET /api/v1/events``."""
    app[SOCKETS] = weakref.WeakSet()
    app[_PRINCIPALS] = weakref.WeakKeyDictionary()
    app.cleanup_ctx.append(_sweeper)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/api/v1/events", events)

"""``GET /api/v1/events``: the app's event bus over a WebSocket, for the console, phones and boxes.

Staff (cookie or API token) receive every event, optionally narrowed by ``?village=``; a listener or
speaker token receives only its own village's ``broadcast.*`` events. Each socket has its own
bounded queue, so a slow client only ever delays itself; when its queue overflowed it receives one
``{"type": "events.lost"}`` before the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from devices import store
from devices.events import Event, Subscription
from devices.models import Device

from .auth import bearer_token, require_account, stream_client
from .keys import EVENTS, SESSIONMAKER
from .limits import stream_slot

__all__ = ["accepts_for_village", "events", "setup"]

SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("event_sockets")
QUEUE_SIZE = 256

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


def _accepts_staff(village: str | None) -> Accept:
    if not village:
        return lambda event: True
    return lambda event: event.get("village") == village or village in (event.get("villages") or ())


def _private_to(account_id: int, accept: Accept) -> Accept:
    """Events addressed to some accounts (``account_ids``: notices) reach only those accounts."""

    def wrapped(event: Event) -> bool:
        ids = event.get("account_ids")
        if ids is not None:
            return account_id in ids
        return accept(event)

    return wrapped


async def _scope(request: web.Request) -> tuple[dict[str, Any], Accept]:
    """Who is asking, and which events they may receive (401/403 problems before the upgrade)."""
    token = request.query.get("token") or bearer_token(request)
    if token:
        async with request.app[SESSIONMAKER]() as session:
            account = await store.account_by_api_token(session, token)
            await session.commit()
        if account is None:
            client = await stream_client(request)
            device_id = client.id if isinstance(client, Device) else None
            hello = {"scope": "village", "village": client.village_code}
            return hello, accepts_for_village(client.village_code, device_id)
    else:
        account = await require_account(request)
    village = request.query.get("village") or None
    return {"scope": "staff", "village": village}, _private_to(account.id, _accepts_staff(village))


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
    hello, accept = await _scope(request)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    sub = request.app[EVENTS].subscribe(QUEUE_SIZE)
    request.app[SOCKETS].add(ws)
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


async def _close_sockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def setup(app: web.Application) -> None:
    """Register ``GET /api/v1/events``."""
    app[SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/api/v1/events", events)

"""Residents: one-step registration (rate-limited), approval by the village head, revocation.

Registering again with the same nickname in the same village is allowed and gets a new token: a
family's second phone, or a phone that lost its token. Each registration is its own listener.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devices import policy, store
from devices.errors import BadToken, InvalidField, NotPermitted
from devices.models import Listener

from .auth import require_account, stream_token, token_client
from .changes import Event, commit_change, staff_of
from .keys import SESSIONMAKER, SETTINGS
from .openapi import document
from .openapi import json_body as body_spec
from .ratelimit import REGISTRATION_LIMITER, RateLimiter
from .stream_clients import cut_client
from .validation import (
    bool_field,
    iso_time,
    json_body,
    page,
    page_params,
    path_int,
    query_choice,
    text_field,
)

__all__ = ["listener_json", "setup"]

STATUSES = ("active", "pending", "revoked")
MAX_NICKNAME = 40


def listener_json(listener: Listener, tz: str) -> dict[str, Any]:
    """The JSON of a listener (never its token)."""
    return {
        "id": listener.id,
        "village": listener.village_code,
        "nickname": listener.nickname,
        "status": listener.status,
        "consent": listener.consent,
        "consent_at": iso_time(listener.consent_at, tz),
        "created_at": iso_time(listener.created_at, tz),
        "last_seen": iso_time(listener.last_seen, tz),
    }


@document(
    **body_spec(
        {
            "village": "string",
            "nickname": {"type": "string", "minLength": 1, "maxLength": 40},
            "consent": {"const": True},
        },
        status=201,
    )
)
async def register(request: web.Request) -> web.Response:
    """Register a resident to a village in one step: returns a token (shown once) and a status."""
    data = await json_body(request, ("village", "nickname", "consent"), ("village", "nickname"))
    village = text_field(data, "village", max_len=64) or ""
    nickname = text_field(data, "nickname", max_len=MAX_NICKNAME) or ""
    if not bool_field(data, "consent", default=False):
        raise InvalidField("consent to the privacy notice is required", field="consent")
    limiter: RateLimiter = request.app[REGISTRATION_LIMITER]
    key = request.remote or "?"
    limiter.check(key)
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        listener, token = await store.create_listener(session, village, nickname, True)
        await commit_change(
            request,
            session,
            "resident",
            "listener.register",
            f"listener:{listener.id}",
            village,
            event=Event(
                "listener.registered",
                {"listener_id": listener.id, "village": village, "status": listener.status},
            ),
            nickname=nickname,
            status=listener.status,
        )
    limiter.hit(key)
    body = {**listener_json(listener, tz), "token": token}
    return web.json_response(body, status=201, dumps=_dumps)


async def _own_registration(request: web.Request) -> Listener:
    """The listener of the request's token, pending or active (401 otherwise)."""
    token = stream_token(request)
    if token is None:
        raise BadToken("send your listener token (Authorization: Bearer or ?token=)")
    listener = await token_client(request, token, {"listener"}, pending_ok=True)
    assert isinstance(listener, Listener)
    return listener


async def me(request: web.Request) -> web.Response:
    """Your own registration (listener token): id, village, nickname and status."""
    listener = await _own_registration(request)
    return web.json_response(listener_json(listener, request.app[SETTINGS].timezone), dumps=_dumps)


async def unregister_me(request: web.Request) -> web.Response:
    """Withdraw your own registration (listener token): the token stops working."""
    own = await _own_registration(request)
    async with request.app[SESSIONMAKER]() as session:
        listener = await store.get_listener(session, own.id)
        store.revoke_listener(listener)
        await commit_change(
            request,
            session,
            "resident",
            "listener.withdraw",
            f"listener:{listener.id}",
            listener.village_code,
        )
    await cut_client(request.app, "listener", listener.id)
    return web.Response(status=204)


async def list_listeners(request: web.Request) -> web.Response:
    """Registered residents the account may see (``?village=``, ``?status=``), newest first."""
    await require_account(request)
    status = query_choice(request, "status", STATUSES)
    limit, offset = page_params(request, default_limit=100)
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        villages = None if staff.visible.villages is None else sorted(staff.visible.villages)
        if village := request.query.get("village"):
            node = staff.tree.village(village)
            if not policy.can_approve_listeners(staff.account, node):
                raise NotPermitted(f"your account may not see the listeners of {village}")
            villages = [village]
        rows, total = await store.list_listeners(session, villages, status, limit, offset)
    return web.json_response(
        page([listener_json(x, tz) for x in rows], total, limit, offset), dumps=_dumps
    )


async def _change(request: web.Request, action: str) -> Listener:
    listener_id = path_int(request)
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        listener = await store.get_listener(session, listener_id, staff.visible)
        if not policy.can_approve_listeners(staff.account, staff.tree.node(listener.village_code)):
            raise NotPermitted("your account may not manage the listeners of this village")
        if action == "approve":
            store.approve_listener(listener)
        else:
            store.revoke_listener(listener)
        await commit_change(
            request,
            session,
            staff.account,
            f"listener.{action}",
            f"listener:{listener.id}",
            listener.village_code,
            event=Event(
                "listener.approved" if action == "approve" else "listener.revoked",
                {"listener_id": listener.id, "village": listener.village_code},
            ),
            nickname=listener.nickname,
        )
    if action == "revoke":
        await cut_client(request.app, "listener", listener.id)
    return listener


async def approve(request: web.Request) -> web.Response:
    """Approve a pending registration (the village head, or anyone who manages the village)."""
    listener = await _change(request, "approve")
    return web.json_response(listener_json(listener, request.app[SETTINGS].timezone), dumps=_dumps)


async def revoke(request: web.Request) -> web.Response:
    """Revoke a listener: its token stops working."""
    await _change(request, "revoke")
    return web.Response(status=204)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def setup(app: web.Application) -> None:
    """Register the listener routes."""
    settings = app[SETTINGS]
    app[REGISTRATION_LIMITER] = RateLimiter(settings.registrations_per_hour, 3600.0)
    app.router.add_post("/api/v1/listeners", register)
    app.router.add_get("/api/v1/listeners", list_listeners)
    app.router.add_get("/api/v1/listeners/me", me)
    app.router.add_delete("/api/v1/listeners/me", unregister_me)
    app.router.add_post("/api/v1/listeners/{id:[0-9]+}/approve", approve)
    app.router.add_delete("/api/v1/listeners/{id:[0-9]+}", revoke)

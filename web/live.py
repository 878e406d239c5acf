"""Going live over HTTP: WebRTC publish and listen, and Icecast source clients.

- ``POST /api/v1/live/publish`` (staff): SDP offer + targets → SDP answer (the session itself —
  planning, rows, encoding, recording, archiving — is ``broadcast.live.LiveDesk``, part of the
  on-air service).
- ``PUT``/``SOURCE /live/{village}.mp3`` (Basic auth: username + API token): the same for
  broadcasters' tools (ffmpeg ``icecast://``, BUTT, Mixxx, Liquidsoap).
- ``POST /api/v1/live/listen/{village}`` (listener/device token): SDP offer → answer.
- ``DELETE /api/v1/live/sessions/{id}`` (also ``/api/v1/live/publish/{id}``, staff): hang up.

Only HTTP here: parse, call the desk, answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from broadcast.planner import Staff
from broadcast.priority import parse_priority
from devices import store
from devices.errors import VillagecastError
from devices.models import Account, Listener
from devices.targets import Targets
from streaming.errors import WrongVillage
from streaming.live_encode import SourceTranscoder
from streaming.source_client import (
    CONTINUE,
    SourceAuthFailed,
    StreamTap,
    input_format_of,
    parse_source_request,
)
from streaming.webrtc import check_offer, host_addresses_for, pinned_host_addresses

from .auth import require_account, stream_client
from .keys import ONAIR, SESSIONMAKER, SETTINGS
from .limits import stream_slot
from .problems import from_error
from .validation import bool_field, json_body, text_field

__all__ = ["setup"]

SOURCE_IDLE_S = 10.0  # a source client that sends nothing for this long is gone


# --- handlers -------------------------------------------------------------------------------------


def _default_title(account: Account, tz: ZoneInfo) -> str:
    who = account.display_name or account.username
    return f"생방송 {datetime.now(UTC).astimezone(tz):%Y-%m-%d %H:%M} ({who})"


async def publish(request: web.Request) -> web.Response:
    """``POST /api/v1/live/publish`` → the SDP answer of a new live session."""
    account = await require_account(request)
    data = await json_body(
        request,
        allowed=("sdp", "type", "targets", "priority", "chime", "title"),
        required=("sdp", "type", "targets"),
    )
    targets = Targets.from_json(data["targets"])
    priority = parse_priority(data.get("priority"))
    chime = bool_field(data, "chime", default=False)
    onair = request.app[ONAIR]
    title = text_field(data, "title", max_len=200, required=False) or _default_title(
        account, onair.rules.tz
    )
    sdp = data["sdp"]
    check_offer(sdp, data["type"])
    session, answer = await onair.live.publish(
        Staff(account), targets, priority, chime, title, sdp, data["type"]
    )
    return web.json_response({"sdp": answer, "type": "answer", **session.to_json()}, status=201)


async def hang_up(request: web.Request) -> web.Response:
    """``DELETE /api/v1/live/sessions/{id}``: end a live session now."""
    account = await require_account(request)
    raw = request.match_info["id"]
    desk = request.app[ONAIR].live
    session_id = int(raw) if raw.isascii() and raw.isdigit() else 0
    session = desk.session_of(session_id, account.id, account.role == "admin")
    await desk.end_session(session, "hung up")
    return web.json_response(session.to_json())


async def sessions(request: web.Request) -> web.Response:
    """``GET /api/v1/live/sessions``: the live sessions now on air that this account may see."""
    account = await require_account(request)
    desk = request.app[ONAIR].live
    mine = [s.to_json() for s in desk.visible_sessions(account.id, account.role == "admin")]
    return web.json_response({"items": mine})


async def listen(request: web.Request) -> web.Response:
    """``POST /api/v1/live/listen/{village}`` → the SDP answer of a WebRTC listener."""
    client = await stream_client(request)
    wanted = request.match_info["village"]
    village = client.village_code if wanted == "me" else wanted
    if village != client.village_code:
        raise WrongVillage(f"this token listens to {client.village_code!r} only")
    data = await json_body(request, allowed=("sdp", "type"), required=("sdp", "type"))
    check_offer(data["sdp"], data["type"])
    listener_id = client.id if isinstance(client, Listener) else None
    answer = await request.app[ONAIR].live.listen(village, data["sdp"], data["type"], listener_id)
    return web.json_response({"sdp": answer, "type": "answer"})


# --- Icecast source clients -------------------------------------------------------------------

_TAP = web.RequestKey("live_source_tap", StreamTap)


def _take_over(request: web.Request) -> StreamTap:
    """Read the connection's raw body ourselves (aiohttp reads an unframed PUT body as empty)."""
    tap = request.get(_TAP)
    if tap is None:
        tap = StreamTap.take_over(request.transport, request.protocol)
        request[_TAP] = tap
    return tap


async def _source_expect(request: web.Request) -> None:
    """``Expect: 100-continue``: take the connection over now; answer 100 only once authorized."""
    _take_over(request)


async def _source_account(request: web.Request, username: str, token: str) -> Account:
    async with request.app[SESSIONMAKER]() as db:
        account = await store.account_by_api_token(db, token)
        await db.commit()
    if account is None or account.username != username:
        raise SourceAuthFailed("wrong username or API token")
    return account


@stream_slot
async def source(request: web.Request) -> web.StreamResponse:
    """``PUT``/``SOURCE /live/{village}.mp3``: an Icecast source client goes live in a village."""
    tap = _take_over(request)  # first, before the loop hands more bytes to aiohttp's parser
    village = request.match_info["village"]
    onair = request.app[ONAIR]
    try:
        head = parse_source_request(request.headers)
        account = await _source_account(request, head.username, head.password)
        priority = parse_priority(request.query.get("priority", "normal"))
        title = head.name or _default_title(account, onair.rules.tz)
        session = await onair.live.open_session(
            Staff(account), Targets(villages=(village,)), kind="source", priority=priority,
            chime=False, title=title,
        )  # fmt: skip
    except VillagecastError as exc:
        refusal = from_error(exc, request)
        if isinstance(exc, SourceAuthFailed):
            refusal.headers["WWW-Authenticate"] = 'Basic realm="villagecast source"'
        refusal.force_close()
        return refusal
    if head.expects_continue and request.transport is not None:
        request.transport.write(CONTINUE)
    response = web.StreamResponse(status=200, headers={"Server": "villagecast"})
    response.force_close()
    transcoder = SourceTranscoder(session.output.push_mp3, input_format_of(head.content_type))
    reason = "source closed"
    try:
        await response.prepare(request)
        await transcoder.start()
        while True:
            try:
                data = await tap.read(SOURCE_IDLE_S)
            except TimeoutError:
                reason = "source mute"
                break
            if not data:
                break
            if not await transcoder.write(data):
                reason = "transcoder failed"
                break
            if session.output.feeds_ended:
                reason = "ended on every channel"  # cancelled or preempted everywhere
                break
    finally:
        await transcoder.close()
        await onair.live.end_session(session, reason)
    return response


# --- wiring ---------------------------------------------------------------------------------------


async def _live_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    with pinned_host_addresses(host_addresses_for(settings.host)):  # for every WebRTC peer
        yield


def setup(app: web.Application) -> None:
    """Register the live routes (the desk is part of the on-air service)."""
    app.cleanup_ctx.append(_live_ctx)
    app.router.add_post("/api/v1/live/publish", publish)
    app.router.add_get("/api/v1/live/sessions", sessions)
    app.router.add_delete("/api/v1/live/sessions/{id:[0-9]+}", hang_up)
    app.router.add_delete("/api/v1/live/publish/{id:[0-9]+}", hang_up)  # what the console calls
    app.router.add_post("/api/v1/live/listen/{village}", listen)
    app.router.add_route("PUT", "/live/{village}.mp3", source, expect_handler=_source_expect)
    app.router.add_route("SOURCE", "/live/{village}.mp3", source)

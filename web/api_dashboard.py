"""JSON the console needs that no other module provides: the dashboard summary and QR codes.

``GET /api/v1/dashboard``: per district and village of the account's region, speakers online/total,
registered residents, live listeners and what plays now.
``GET /api/v1/replays`` (listener token): what played in the listener's village, newest first.
``POST /api/v1/qr`` ``{text}``: an SVG QR code (for installers scanning a speaker's stream URL).
"""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

import segno
from aiohttp import web

from broadcast.played import recently_played
from devices import policy, store
from devices.errors import InvalidField
from devices.targets import RegionTree
from streaming.hub import ChannelHub

from .auth import require_account, stream_client
from .keys import SESSIONMAKER, SETTINGS
from .openapi import document
from .openapi import json_body as body_spec
from .streams import HUB
from .validation import json_body

QR_MAX_CHARS = 1000
REPLAYS_LIMIT = 20


def _channel_stats(hub: ChannelHub, village: str) -> tuple[int, str | None]:
    """(live listeners, now playing title) of a village channel; speaker boxes are not listeners."""
    listeners = hub.listener_count(village) - len(hub.connected_devices(village))
    item = hub.now_playing(village)
    return max(listeners, 0), (item.title if item is not None else None)


async def dashboard(request: web.Request) -> web.Response:
    """The region tree of the account with per-village speaker, resident and channel numbers."""
    account = await require_account(request)
    hub = request.app[HUB]
    async with request.app[SESSIONMAKER]() as session:
        regions = await store.list_regions(session)
        speakers = await store.speaker_counts(session)
        residents = await store.resident_counts(session)
    visible = policy.visibility(account, RegionTree.build(regions))
    by_code: dict[str, dict[str, Any]] = {}
    for region in regions:
        if region.kind != "district":
            continue
        node: dict[str, Any] = {
            "code": region.code,
            "name_ko": region.name_ko,
            "name_en": region.name_en,
        }
        node.update(villages=[], speakers_online=0, speakers_total=0, residents=0, live_listeners=0)
        by_code[region.code] = node
    for region in regions:
        if region.kind != "village" or region.parent_code not in by_code:
            continue
        if not visible.sees_region(region.code):
            continue
        online = speakers.get((region.code, True), 0)
        total = online + speakers.get((region.code, False), 0)
        live, playing = _channel_stats(hub, region.code)
        village = {
            "code": region.code,
            "name_ko": region.name_ko,
            "name_en": region.name_en,
            "speakers_online": online,
            "speakers_total": total,
            "residents": residents.get(region.code, 0),
            "live_listeners": live,
            "now_playing": playing,
        }
        district = by_code[region.parent_code]  # type: ignore[index]
        district["villages"].append(village)
        district["speakers_online"] += online
        district["speakers_total"] += total
        district["residents"] += village["residents"]
        district["live_listeners"] += live
    districts = [node for node in by_code.values() if node["villages"]]
    totals = {
        key: sum(d[key] for d in districts)
        for key in ("speakers_online", "speakers_total", "residents", "live_listeners")
    }
    return web.json_response(
        {
            "role": account.role,
            "region": account.region_code,
            "streaming": True,
            "totals": totals,
            "districts": districts,
        }
    )


@document(
    **body_spec(
        {"text": {"type": "string", "maxLength": QR_MAX_CHARS}},
        {"scale": {"type": "integer", "minimum": 1, "maximum": 16}},
    )
)
async def qr_code(request: web.Request) -> web.Response:
    """An SVG QR code of ``text`` (staff only; e.g. a speaker box's stream URL with its token)."""
    await require_account(request)
    body = await json_body(request, allowed=("text", "scale"), required=("text",))
    text = body["text"]
    if not isinstance(text, str) or len(text) > QR_MAX_CHARS:
        raise InvalidField(f"text must be a string of at most {QR_MAX_CHARS} characters")
    scale = body.get("scale", 4)
    if not isinstance(scale, int) or not 1 <= scale <= 16:
        raise InvalidField("scale must be an integer from 1 to 16")
    buffer = io.BytesIO()
    try:
        qr = segno.make(text, error="m")
    except segno.DataOverflowError:  # e.g. 1,000 emoji: 4,000 bytes do not fit any QR code
        raise InvalidField("text does not fit in a QR code", field="text") from None
    qr.save(buffer, kind="svg", scale=scale, border=4, title="QR")
    return web.Response(
        body=buffer.getvalue(),
        content_type="image/svg+xml",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def replays(request: web.Request) -> web.Response:
    """Announcements that played in the village of this listener (or speaker box), newest first."""
    client = await stream_client(request)
    village = client.village_code
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    async with request.app[SESSIONMAKER]() as session:
        rows = await recently_played(session, village, REPLAYS_LIMIT)
    items = [
        {
            "id": a.id,
            "title": a.title,
            "played_at": played.astimezone(tz).isoformat() if played else None,
            "duration_s": a.duration_ms / 1000 if a.duration_ms else None,
            "url": f"/media/announcements/{a.id}.mp3",
        }
        for a, played in rows
    ]
    return web.json_response({"village": village, "items": items})


def setup(app: web.Application) -> None:
    """Register the dashboard, replays and QR endpoints."""
    app.router.add_get("/api/v1/dashboard", dashboard)
    app.router.add_get("/api/v1/replays", replays)
    app.router.add_post("/api/v1/qr", qr_code)

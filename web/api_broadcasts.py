"""Broadcasts API: create (with a plan), list, report (JSON and CSV), cancel; the podcast feed.

Thin handlers: parse → the on-air service (``broadcast.onair.OnAir``) or ``broadcast.store`` →
serialize. The service (its scheduler and live desk) is built here once, after the channel hub and
the ingest service, and stored under ``keys.ONAIR``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from broadcast import store
from broadcast.dispatcher import DispatcherConfig
from broadcast.errors import InvalidSchedule
from broadcast.feed import rss_feed
from broadcast.live import LiveConfig
from broadcast.models import BROADCAST_STATUSES, Broadcast, Occurrence
from broadcast.onair import OnAir, check_visible, visible_villages
from broadcast.planner import AirRequest, Staff
from broadcast.priority import parse_priority
from broadcast.report import VillageReport, report_csv, report_totals
from broadcast.scheduling import parse_instant
from devices import store as devices_store
from devices.errors import InvalidField
from devices.models import Account
from devices.targets import Targets
from recordings.models import Rendition
from streaming.hub import HubPort
from streaming.webrtc import host_addresses_for, parse_ice_servers

from .api_announcements import INGEST
from .auth import require_account, stream_token
from .keys import EVENTS, ONAIR, SESSIONMAKER, SETTINGS
from .stream_clients import feed_access
from .streams import HUB
from .system import METRICS
from .validation import bool_field, int_field, json_body, page, page_params, path_int

__all__ = ["setup"]

CREATE_FIELDS = (
    "announcement_id",
    "targets",
    "start_at",
    "priority",
    "repeat",
    "chime",
    "recurrence",
    "defer_quiet",
    "dry_run",
)
FEED_ITEMS = 50


class _IngestMedia:
    """The archive's files as the dispatcher needs them (:class:`broadcast.dispatcher.Media`)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def rendition_path(self, rendition: Rendition) -> Path:
        return self._app[INGEST].rendition_path(rendition)

    def chime_parts(self, emergency: bool) -> tuple[Path, Path] | None:
        chimes = self._app[INGEST].chimes
        if chimes is None:
            return None
        if emergency:
            return chimes.emergency_start, chimes.emergency_end
        return chimes.start, chimes.end


def _live_config(app: web.Application) -> LiveConfig:
    settings = app[SETTINGS]
    loopback = host_addresses_for(settings.host) == ["127.0.0.1"]
    return LiveConfig(
        recordings_dir=settings.data_dir / "live",
        ice_urls=tuple(parse_ice_servers(settings.ice_servers)),
        public_address="" if loopback else settings.public_address,
        webrtc_listeners_per_channel=settings.webrtc_listeners_per_channel,
    )


async def _onair_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    rules = DispatcherConfig.build(
        settings.timezone,
        settings.quiet_hours,
        settings.validity_min,
        settings.emergency_validity_min,
    )
    onair = OnAir(
        app[SESSIONMAKER],
        HubPort(app[HUB]),
        _IngestMedia(app),
        rules,
        publish=app[EVENTS].publish,
        ingest=app[INGEST],
        live=_live_config(app),
        pending_reports=settings.data_dir / "reports-pending.jsonl",
    )
    await onair.start()  # recovers the scheduler's rows and cut-off live recordings
    app[ONAIR] = onair
    dispatcher = onair.dispatcher
    app[METRICS].gauge(
        "villagecast_broadcast_items_total",
        "Broadcast items handed to the channels, and occurrences that ended missed.",
        lambda: [
            ({"outcome": "dispatched"}, float(dispatcher.dispatched)),
            ({"outcome": "missed"}, float(dispatcher.missed)),
        ],
    )
    yield
    await onair.stop()


# --- JSON -------------------------------------------------------------------------------------


def _t(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat() if value else None


def broadcast_json(b: Broadcast, tz: ZoneInfo) -> dict[str, Any]:
    """The public JSON of a broadcast (times in the display zone)."""
    return {
        "id": b.id,
        "title": b.title,
        "announcement_id": b.announcement_id,
        "status": b.status,
        "priority": b.priority,
        "repeat": b.repeat,
        "chime": b.chime,
        "targets": b.targets,
        "villages": b.villages,
        "start_at": _t(b.start_at, tz),
        "next_due_at": _t(b.next_due_at, tz),
        "recurrence": b.recurrence,
        "defer_quiet": b.defer_quiet,
        "created_at": _t(b.created_at, tz),
        "created_by": b.created_by,
        "ended_at": _t(b.ended_at, tz),
        "cancelled_at": _t(b.cancelled_at, tz),
        "url": f"/api/v1/broadcasts/{b.id}",
        "report_csv": f"/api/v1/broadcasts/{b.id}/report.csv",
    }


def _occurrence_json(o: Occurrence, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "seq": o.seq,
        "village": o.village_code,
        "status": o.status,
        "due_at": _t(o.due_at, tz),
        "started_at": _t(o.started_at, tz),
        "ended_at": _t(o.ended_at, tz),
        "quiet_hours": o.quiet,
        "note": o.note,
    }


# --- handlers ---------------------------------------------------------------------------------


def _parse_create(data: dict[str, Any], tz: ZoneInfo) -> AirRequest:
    announcement_id = int_field(data, "announcement_id", lo=1, hi=2**62)
    start_raw = data.get("start_at")
    return AirRequest(
        announcement_id=announcement_id,
        targets=Targets.from_json(data.get("targets")),
        start_at=None if start_raw in (None, "") else parse_instant(start_raw, tz),
        priority=parse_priority(data.get("priority")),
        repeat=int_field(data, "repeat", lo=1, hi=3, default=1),
        chime=bool_field(data, "chime", default=True),
        recurrence=data.get("recurrence"),
        defer_quiet=bool_field(data, "defer_quiet", default=False),
        dry_run=bool_field(data, "dry_run", default=False),
    )


async def create(request: web.Request) -> web.Response:
    """``POST /api/v1/broadcasts``: 201 with the plan (200 and nothing created on ``dry_run``)."""
    account = await require_account(request)
    data = await json_body(request, CREATE_FIELDS, required=("announcement_id", "targets"))
    onair = request.app[ONAIR]
    tz = onair.rules.tz
    sent = await onair.send(Staff(account), _parse_create(data, tz))
    plan = [p.to_json(tz) for p in sent.plan.entries]
    if sent.broadcast is None:
        return web.json_response(
            {"id": None, "status": "dry_run", "start_at": _t(sent.plan.start, tz), "plan": plan}
        )
    body = broadcast_json(sent.broadcast, tz)
    body["plan"] = plan
    return web.json_response(body, status=201, headers={"Location": body["url"]})


async def _load_report(
    request: web.Request, account: Account, broadcast_id: int
) -> tuple[Broadcast, list[Occurrence], list[VillageReport]]:
    async with request.app[SESSIONMAKER]() as session:
        b = await store.get_broadcast(session, broadcast_id)
        await check_visible(session, account, b, every=False)
        occs = await store.occurrences_of(session, b.id)
        villages = await store.village_reports(session, b, occs)
        scope = await visible_villages(session, account)
    if scope is not None:  # officers see their own villages of a wider broadcast
        villages = [v for v in villages if v.village in scope]
        occs = [o for o in occs if o.village_code in scope]
    return b, occs, villages


async def get_one(request: web.Request) -> web.Response:
    """``GET /api/v1/broadcasts/{id}``: status, occurrences and the report per village."""
    account = await require_account(request)
    tz = request.app[ONAIR].rules.tz
    b, occs, villages = await _load_report(request, account, path_int(request))
    body = broadcast_json(b, tz)
    body["occurrences"] = [_occurrence_json(o, tz) for o in occs]
    villages_json = [v.to_json(tz) for v in villages]
    body["report"] = {"totals": report_totals(villages), "villages": villages_json}
    return web.json_response(body)


async def get_csv(request: web.Request) -> web.Response:
    """``GET /api/v1/broadcasts/{id}/report.csv``: the report for Excel (UTF-8 with BOM)."""
    account = await require_account(request)
    tz = request.app[ONAIR].rules.tz
    b, _, villages = await _load_report(request, account, path_int(request))
    return web.Response(
        body=report_csv(b.id, b.title, villages, tz),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="broadcast-{b.id}-report.csv"'},
    )


def _query_time(request: web.Request, name: str, tz: ZoneInfo) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return parse_instant(raw, tz)
    except InvalidSchedule:
        raise InvalidField(f"{name} must be an ISO 8601 time", field=name) from None


async def list_all(request: web.Request) -> web.Response:
    """``GET /api/v1/broadcasts?status=&village=&from=&to=&limit=&offset=``."""
    account = await require_account(request)
    tz = request.app[ONAIR].rules.tz
    limit, offset = page_params(request)
    status = request.query.get("status") or None
    if status is not None and status not in BROADCAST_STATUSES:
        raise InvalidField(
            f"status must be one of: {', '.join(BROADCAST_STATUSES)}", field="status"
        )
    async with request.app[SESSIONMAKER]() as session:
        scope = await visible_villages(session, account)
        rows, total = await store.list_broadcasts(
            session,
            status=status,
            village=request.query.get("village") or None,
            visible=scope,
            start_from=_query_time(request, "from", tz),
            start_to=_query_time(request, "to", tz),
            limit=limit,
            offset=offset,
        )
    return web.json_response(page([broadcast_json(b, tz) for b in rows], total, limit, offset))


async def cancel(request: web.Request) -> web.Response:
    """``POST /api/v1/broadcasts/{id}/cancel`` (optional JSON ``{reason}``): stops it now."""
    account = await require_account(request)
    reason = ""
    if request.content_type == "application/json" and request.can_read_body:
        data = await json_body(request, ("reason",))
        reason = str(data.get("reason") or "")[:500]
    onair = request.app[ONAIR]
    b = await onair.cancel(Staff(account), path_int(request), reason)
    return web.json_response(broadcast_json(b, onair.rules.tz))


# --- the podcast feed -------------------------------------------------------------------------


async def feed(request: web.Request) -> web.Response:
    """``GET /feeds/{village}.rss``: RSS 2.0 + iTunes tags of the village's past broadcasts."""
    village_code = request.match_info["village"]
    token = stream_token(request)
    settings = request.app[SETTINGS]
    base = settings.public_url.rstrip("/") or str(request.url.origin())
    async with request.app[SESSIONMAKER]() as session:
        village = await devices_store.get_village(session, village_code)
    await feed_access(request, village)  # a wrong token is a 401; approval-gated: not public
    async with request.app[SESSIONMAKER]() as session:
        rows = await store.feed_items(session, village_code, FEED_ITEMS)
    xml = rss_feed(village.name_ko, village.name_en, rows, base, token)
    return web.Response(
        text=xml,
        content_type="application/rss+xml",
        charset="utf-8",
        headers={"Cache-Control": "private, max-age=60" if token else "public, max-age=60"},
    )


async def _shutdown(app: web.Application) -> None:
    if ONAIR in app:
        await app[ONAIR].shutdown()


def setup(app: web.Application) -> None:
    """Register the broadcast routes, the feed and the scheduler."""
    app.cleanup_ctx.append(_onair_ctx)
    # SIGTERM: the scheduler stops first, before streams close and in-flight requests drain
    app.on_shutdown.insert(0, _shutdown)
    app.router.add_post("/api/v1/broadcasts", create)
    app.router.add_get("/api/v1/broadcasts", list_all)
    app.router.add_get(r"/api/v1/broadcasts/{id:[0-9]+}", get_one)
    app.router.add_get(r"/api/v1/broadcasts/{id:[0-9]+}/report.csv", get_csv)
    app.router.add_post(r"/api/v1/broadcasts/{id:[0-9]+}/cancel", cancel)
    app.router.add_get(r"/feeds/{village:[A-Za-z0-9_-]+}.rss", feed)

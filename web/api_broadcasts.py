"""Broadcasts API: create (with a plan), list, report (JSON and CSV), cancel; the podcast feed.

Thin handlers: parse → ``broadcast.service`` / ``broadcast.store`` → serialize. The scheduler
(:class:`broadcast.dispatcher.Dispatcher`) starts after the channel hub and the ingest service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from broadcast import store
from broadcast.dispatcher import Dispatcher, DispatcherConfig
from broadcast.errors import InvalidSchedule
from broadcast.models import BROADCAST_STATUSES, Broadcast, Occurrence
from broadcast.priority import parse_priority
from broadcast.quiet import QuietHours
from broadcast.report import VillageReport, report_csv
from broadcast.scheduling import parse_instant
from broadcast.service import (
    BroadcastRequest,
    cancel_broadcast,
    check_visible,
    create_broadcast,
    visible_villages,
)
from devices import store as devices_store
from devices.errors import InvalidField
from devices.models import Account
from devices.targets import Targets
from recordings.models import Announcement, Rendition

from .api_announcements import INGEST
from .auth import require_account, stream_client, stream_token
from .keys import EVENTS, SESSIONMAKER, SETTINGS
from .streams import HUB
from .system import METRICS
from .validation import bool_field, int_field, json_body, page, page_params, path_int

__all__ = ["DISPATCHER", "setup"]

DISPATCHER = web.AppKey("broadcast_dispatcher", Dispatcher)

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


def _config(app: web.Application) -> DispatcherConfig:
    settings = app[SETTINGS]
    return DispatcherConfig(
        tz=ZoneInfo(settings.timezone),
        default_quiet=QuietHours.parse(settings.quiet_hours),
        validity_min=settings.validity_min,
        emergency_validity_min=settings.emergency_validity_min,
    )


async def _dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    dispatcher = Dispatcher(
        app[SESSIONMAKER], app[HUB], _IngestMedia(app), _config(app), publish=app[EVENTS].publish
    )
    await dispatcher.start()
    app[DISPATCHER] = dispatcher
    app[METRICS].gauge(
        "villagecast_broadcast_items_total",
        "Broadcast items handed to the channels, and occurrences that ended missed.",
        lambda: [
            ({"outcome": "dispatched"}, float(dispatcher.dispatched)),
            ({"outcome": "missed"}, float(dispatcher.missed)),
        ],
    )
    yield
    await dispatcher.stop()


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


def _totals(villages: list[VillageReport]) -> dict[str, int]:
    out = dict.fromkeys(
        ("targeted", "reached", "missed", "registered", "live", "replayed", "not_heard"), 0
    )
    for v in villages:
        out["targeted"] += len(v.devices)
        out["reached"] += sum(d.reached for d in v.devices)
        out["missed"] += sum(not d.reached for d in v.devices) if v.ended else 0
        out["registered"] += len(v.listeners)
        out["live"] += sum(x.heard == "live" for x in v.listeners)
        out["replayed"] += sum(x.heard == "replay" for x in v.listeners)
        out["not_heard"] += sum(x.heard == "none" for x in v.listeners)
    return out


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


def _parse_create(data: dict[str, Any], tz: ZoneInfo) -> BroadcastRequest:
    announcement_id = int_field(data, "announcement_id", lo=1, hi=2**62)
    start_raw = data.get("start_at")
    return BroadcastRequest(
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
    dispatcher = request.app[DISPATCHER]
    tz = dispatcher.config.tz
    req = _parse_create(data, tz)
    async with request.app[SESSIONMAKER]() as session:
        created = await create_broadcast(
            session,
            account,
            req,
            now=dispatcher.clock.now(),
            channels=dispatcher.channels,
            config=dispatcher.config,
        )
        await session.commit()
    dispatcher.poke()
    plan = [p.to_json(tz) for p in created.plan]
    if created.broadcast is None:
        return web.json_response(
            {"id": None, "status": "dry_run", "start_at": _t(created.first_start, tz), "plan": plan}
        )
    body = broadcast_json(created.broadcast, tz)
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
    tz = request.app[DISPATCHER].config.tz
    b, occs, villages = await _load_report(request, account, path_int(request))
    body = broadcast_json(b, tz)
    body["occurrences"] = [_occurrence_json(o, tz) for o in occs]
    body["report"] = {"totals": _totals(villages), "villages": [v.to_json(tz) for v in villages]}
    return web.json_response(body)


async def get_csv(request: web.Request) -> web.Response:
    """``GET /api/v1/broadcasts/{id}/report.csv``: the report for Excel (UTF-8 with BOM)."""
    account = await require_account(request)
    tz = request.app[DISPATCHER].config.tz
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
    tz = request.app[DISPATCHER].config.tz
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
    dispatcher = request.app[DISPATCHER]
    async with request.app[SESSIONMAKER]() as session:
        b, to_stop = await cancel_broadcast(
            session, account, path_int(request), dispatcher.clock.now(), reason
        )
        await session.commit()
    await dispatcher.stop_items(to_stop)
    await dispatcher.process_reports()  # the channels' "cancelled" reports, so the answer is final
    dispatcher.poke()
    async with request.app[SESSIONMAKER]() as session:
        b = await store.get_broadcast(session, b.id)
    return web.json_response(broadcast_json(b, dispatcher.config.tz))


# --- the podcast feed -------------------------------------------------------------------------


async def feed(request: web.Request) -> web.Response:
    """``GET /feeds/{village}.rss``: RSS 2.0 + iTunes tags of the village's past broadcasts."""
    village_code = request.match_info["village"]
    token = stream_token(request)
    if token is not None:
        await stream_client(request)  # a wrong token is a 401, not a feed without counting
    settings = request.app[SETTINGS]
    base = settings.public_url.rstrip("/") or str(request.url.origin())
    async with request.app[SESSIONMAKER]() as session:
        village = await devices_store.get_village(session, village_code)
        rows = (
            await session.execute(
                select(Announcement, Rendition, Occurrence.started_at)
                .join(Broadcast, Broadcast.announcement_id == Announcement.id)
                .join(Occurrence, Occurrence.broadcast_id == Broadcast.id)
                .join(
                    Rendition,
                    (Rendition.announcement_id == Announcement.id) & (Rendition.format == "mp3"),
                )
                .where(
                    Occurrence.village_code == village_code,
                    Occurrence.started_at.is_not(None),
                )
                .order_by(Occurrence.started_at.desc())
                .limit(FEED_ITEMS * 4)
            )
        ).all()
    seen: set[int] = set()
    items = []
    suffix = f"?token={token}" if token else ""
    for ann, rendition, started_at in rows:
        if ann.id in seen or len(seen) >= FEED_ITEMS:
            continue
        seen.add(ann.id)
        url = f"{base}/media/announcements/{ann.id}.mp3{suffix}"
        seconds = rendition.duration_ms // 1000
        items.append(
            "<item>"
            f"<title>{escape(ann.title)}</title>"
            f'<guid isPermaLink="false">villagecast-announcement-{ann.id}</guid>'
            f"<pubDate>{format_datetime(started_at)}</pubDate>"
            f'<enclosure url={quoteattr(url)} length="{rendition.bytes}" type="audio/mpeg"/>'
            f"<itunes:duration>{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            "</itunes:duration>"
            f"<description>{escape(ann.text or ann.title)}</description>"
            "</item>"
        )
    title = f"{village.name_ko} 마을방송"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        "<channel>"
        f"<title>{escape(title)}</title>"
        f"<link>{escape(base)}/listen</link>"
        f"<description>{escape(title)} ({escape(village.name_en)}) — villagecast</description>"
        "<language>ko</language>"
        f"<itunes:author>{escape(village.name_ko)}</itunes:author>"
        "<itunes:explicit>false</itunes:explicit>"
        '<itunes:category text="Government"/>' + "".join(items) + "</channel></rss>"
    )
    return web.Response(
        text=xml,
        content_type="application/rss+xml",
        charset="utf-8",
        headers={"Cache-Control": "private, max-age=60" if token else "public, max-age=60"},
    )


def setup(app: web.Application) -> None:
    """Register the broadcast routes, the feed and the scheduler."""
    app.cleanup_ctx.append(_dispatcher_ctx)
    app.router.add_post("/api/v1/broadcasts", create)
    app.router.add_get("/api/v1/broadcasts", list_all)
    app.router.add_get(r"/api/v1/broadcasts/{id:[0-9]+}", get_one)
    app.router.add_get(r"/api/v1/broadcasts/{id:[0-9]+}/report.csv", get_csv)
    app.router.add_post(r"/api/v1/broadcasts/{id:[0-9]+}/cancel", cancel)
    app.router.add_get(r"/feeds/{village:[A-Za-z0-9_-]+}.rss", feed)

"""Disaster alerts API: CAP 1.2 in, the alerts page's list and decisions, the signed as-run log.

Thin handlers: parse → :class:`broadcast.alerts.service.AlertService` or the as-run log →
serialize. The service, the as-run writer and the feed poller are built here once, after the
on-air service (``keys.ONAIR``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from broadcast.alerts.asrun_log import AsRunLog
from broadcast.alerts.cap import MAX_CAP_BYTES
from broadcast.alerts.decide import AUTO_POLICIES
from broadcast.alerts.errors import AlertTooLarge, NotCapXml
from broadcast.alerts.keys import load_or_create_key
from broadcast.alerts.models import Alert
from broadcast.alerts.poller import FeedPoller
from broadcast.alerts.service import AlertService
from broadcast.scheduling import parse_instant
from devices.errors import InvalidField, NotPermitted
from devices.models import Account
from streaming.items import ItemReport

from .api_announcements import INGEST
from .auth import require_account
from .keys import ONAIR, SESSIONMAKER, SETTINGS
from .settings import SettingsError
from .validation import bool_field, json_body, page, page_params, path_int, text_field

__all__ = ["ALERTS", "ASRUN", "alert_json", "setup"]

ALERTS = web.AppKey("alerts", AlertService)
ASRUN = web.AppKey("asrun", AsRunLog)
POLLER = web.AppKey("cap_poller", FeedPoller)
CAP_TYPES = ("application/cap+xml", "application/xml", "text/xml")
ASRUN_WAKE_S = 2.0  # after an item ends, when the as-run writer looks for ended broadcasts


def _t(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat() if value else None


def alert_json(a: Alert, tz: ZoneInfo, *, xml: bool = False) -> dict[str, Any]:
    """The JSON of one alert (with the CAP document itself on request)."""
    out: dict[str, Any] = {
        "id": a.id,
        "identifier": a.identifier,
        "sender": a.sender,
        "sent": a.sent,
        "received_at": _t(a.received_at, tz),
        "source": a.source,
        "status": a.status,
        "msg_type": a.msg_type,
        "exercise": a.exercise,
        "event": a.event,
        "headline": a.headline,
        "speech": a.speech,
        "priority": a.priority,
        "severity": a.severity,
        "urgency": a.urgency,
        "expires_at": _t(a.expires_at, tz),
        "areas": a.areas,
        "villages": a.villages,
        "state": a.state,
        "reason": a.reason,
        "broadcast_id": a.broadcast_id,
        "broadcast_url": f"/api/v1/broadcasts/{a.broadcast_id}" if a.broadcast_id else None,
    }
    if xml:
        out["cap"] = a.xml
    return out


def _staff(account: Account) -> Account:
    """Alerts are the county's and the districts' business (village heads hear the result)."""
    if account.role not in ("admin", "district"):
        raise NotPermitted("alerts are handled by the county office and the districts")
    return account


async def receive(request: web.Request) -> web.Response:
    """Receive a CAP 1.2 alert (an admin's API token): stored, matched, aired by the rules.

    ``201`` with the alert (``state`` says what happened: ``aired``, ``pending``, ``ignored``…);
    the same document again answers ``200`` with the alert it already is, and airs nothing.
    """
    account = await require_account(request)
    if account.role != "admin":
        raise NotPermitted("only the county office's accounts may post alerts")
    ctype = request.content_type
    if ctype not in CAP_TYPES:
        raise NotCapXml(f"send the CAP document as application/cap+xml, not {ctype or 'nothing'}")
    if request.content_length is not None and request.content_length > MAX_CAP_BYTES:
        raise AlertTooLarge(f"a CAP document may be at most {MAX_CAP_BYTES // 1024} KB")
    data = b""
    while chunk := await request.content.read(MAX_CAP_BYTES + 1 - len(data)):
        data += chunk  # read() gives what has arrived: a document may come in several chunks
        if len(data) > MAX_CAP_BYTES:
            break
    received = await request.app[ALERTS].receive(data, f"post:{account.username}"[:300])
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    body = alert_json(received.alert, tz) | {"duplicate": received.duplicate}
    return web.json_response(body, status=200 if received.duplicate else 201)


async def list_alerts(request: web.Request) -> web.Response:
    """Alerts received, newest first, paged (county and district staff)."""
    _staff(await require_account(request))
    limit, offset = page_params(request)
    rows, total = await request.app[ALERTS].list(limit, offset)
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    return web.json_response(page([alert_json(a, tz) for a in rows], total, limit, offset))


async def get_one(request: web.Request) -> web.Response:
    """One alert with its CAP document, what matched and what became of it."""
    _staff(await require_account(request))
    alert = await request.app[ALERTS].get(path_int(request))
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    return web.json_response(alert_json(alert, tz, xml=True))


async def approve(request: web.Request) -> web.Response:
    """Air a pending alert ``{villages?, defer_quiet?}``: the door's rules apply (quiet hours)."""
    account = _staff(await require_account(request))
    data: dict[str, Any] = {}
    if request.can_read_body:
        data = await json_body(request, ("villages", "defer_quiet"))
    villages = data.get("villages")
    if villages is not None and (
        not isinstance(villages, list) or not all(isinstance(v, str) for v in villages)
    ):
        raise InvalidField("villages must be a list of village codes", field="villages")
    alert = await request.app[ALERTS].approve(
        account, path_int(request), villages,
        defer_quiet=bool_field(data, "defer_quiet", default=False),
    )  # fmt: skip
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    return web.json_response(alert_json(alert, tz))


async def reject(request: web.Request) -> web.Response:
    """Decide not to air a pending alert ``{reason}``; audited."""
    account = _staff(await require_account(request))
    data: dict[str, Any] = {}
    if request.can_read_body:
        data = await json_body(request, ("reason",))
    reason = text_field(data, "reason", max_len=500, required=False) or ""
    alert = await request.app[ALERTS].reject(account, path_int(request), reason)
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    return web.json_response(alert_json(alert, tz))


async def asrun(request: web.Request) -> web.Response:
    """The signed as-run log as JSON Lines (``?from=&to=``, ISO 8601): check it with
    ``villagecast asrun verify FILE``."""
    account = await require_account(request)
    if account.role != "admin":
        raise NotPermitted("the as-run log is the county office's")
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    start = parse_instant(request.query["from"], tz) if "from" in request.query else None
    end = parse_instant(request.query["to"], tz) if "to" in request.query else None
    log = request.app[ASRUN]
    await log.sweep()  # what ended a moment ago is in the export
    lines = await log.export(start, end)
    return web.Response(
        text="\n".join(lines) + "\n",
        content_type="application/x-ndjson",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="villagecast-asrun.jsonl"'},
    )


async def _alerts_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.alerts_auto not in AUTO_POLICIES:
        raise SettingsError(
            f"VILLAGECAST_ALERTS_AUTO={settings.alerts_auto!r}: use {', '.join(AUTO_POLICIES)}"
        )
    auto = settings.alerts_auto
    service = AlertService(app[SESSIONMAKER], app[ONAIR], app[INGEST], auto)
    app[ALERTS] = service
    log = AsRunLog(app[SESSIONMAKER], load_or_create_key(settings.data_dir / "keys" / "asrun.pem"))
    app[ASRUN] = log
    log.start()
    loop = asyncio.get_running_loop()

    def on_report(report: ItemReport) -> None:
        # an item ended: its report is written within a moment, then the broadcast may be done
        if report.event != "started":
            loop.call_later(ASRUN_WAKE_S, log.poke)

    app[ONAIR].channels.add_report_listener(on_report)
    feeds = [u.strip() for u in settings.cap_feeds.split(",") if u.strip()]
    poller = FeedPoller(feeds, service.receive, settings.cap_poll_s)
    app[POLLER] = poller
    poller.start()
    yield
    await poller.stop()
    await log.stop()


def setup(app: web.Application) -> None:
    """Register the alert routes, the alert service, the as-run writer and the feed poller."""
    app.cleanup_ctx.append(_alerts_ctx)
    app.router.add_post("/api/v1/alerts", receive)
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_get(r"/api/v1/alerts/{id:[0-9]+}", get_one)
    app.router.add_post(r"/api/v1/alerts/{id:[0-9]+}/approve", approve)
    app.router.add_post(r"/api/v1/alerts/{id:[0-9]+}/reject", reject)
    app.router.add_get("/api/v1/asrun", asrun)

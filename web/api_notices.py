"""Notices to village heads (스마트 이장넷): send, inbox, open, confirm, reply, receipts, air.

Thin handlers: parse → :class:`broadcast.notice_service.NoticeService` → serialize. Files come as
multipart parts and are streamed to the archive's incoming directory; the service decides what they
are by their content.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web

from broadcast.notice_files import MAX_ATTACHMENTS, IncomingFile, UnsupportedAttachment
from broadcast.notice_models import Notice, NoticeAttachment, NoticeRecipient, NoticeReply
from broadcast.notice_service import NoticeService, NoticeView, Receipts
from broadcast.notice_store import Counts
from broadcast.notices import (
    district_rates,
    is_overdue,
    parse_draft,
    receipts_csv,
    timeline,
)
from devices.errors import InvalidField
from recordings.errors import UploadTooLarge

from .api_announcements import INGEST, UnsupportedUpload, _next_part, _receive, safe_display_name
from .auth import require_account
from .keys import EVENTS, ONAIR, SESSIONMAKER, SETTINGS
from .openapi import document
from .openapi import json_body as body_spec
from .validation import bool_field, json_body, multipart_reader, page, page_params, path_int

__all__ = ["NOTICES", "setup"]

NOTICES = web.AppKey("notices", NoticeService)
_FILE_FIELDS = ("attachments", "attachment", "file", "files", "photos", "photo")
_MAX_FIELD = 64 * 1024


async def _service_ctx(app: web.Application) -> AsyncIterator[None]:
    app[NOTICES] = NoticeService(
        app[SESSIONMAKER],
        app[INGEST],
        app[ONAIR],
        app[EVENTS].publish,
        ZoneInfo(app[SETTINGS].timezone),
    )
    yield


# --- parsing ----------------------------------------------------------------------------------


async def _form(request: web.Request) -> tuple[dict[str, Any], list[IncomingFile]]:
    """JSON (no files) or multipart/form-data: text fields and files streamed to disk."""
    if request.content_type == "application/json":
        return await json_body(request, allowed=_allowed(request)), []
    if request.content_type != "multipart/form-data":
        raise UnsupportedUpload(f"{request.content_type or 'no content type'} is not accepted here")
    ingest = request.app[INGEST]
    limit = request.app[SETTINGS].max_upload_bytes
    too_large = UploadTooLarge(f"uploads are limited to {limit // (1024 * 1024)} MB in all")
    if request.content_length is not None and request.content_length > limit + _MAX_FIELD:
        raise too_large
    fields: dict[str, Any] = {}
    files: list[IncomingFile] = []
    received = 0
    reader = await multipart_reader(request)  # no or an over-long boundary: 422
    try:
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidField("nested multipart bodies are not accepted")
            if part.name in _FILE_FIELDS and part.filename is not None:
                if len(files) >= MAX_ATTACHMENTS:
                    raise UnsupportedAttachment(f"at most {MAX_ATTACHMENTS} files")
                path = ingest.archive.new_incoming()
                files.append(IncomingFile(path, safe_display_name(part.filename) or ""))
                await _receive(part, path, limit)
                received += path.stat().st_size
                if received > limit:
                    raise too_large
            elif part.name:
                raw = await part.read(decode=True)
                if len(raw) > _MAX_FIELD:
                    raise InvalidField(f"{part.name} is too long", field=part.name)
                fields[part.name] = raw.decode("utf-8", errors="replace")
            else:
                await part.release()
    except BaseException:
        for f in files:
            f.path.unlink(missing_ok=True)
        raise
    if isinstance(fields.get("targets"), str):
        try:
            fields["targets"] = json.loads(fields["targets"])
        except json.JSONDecodeError:
            raise InvalidField("targets must be a JSON object", field="targets") from None
    return fields, files


def _allowed(request: web.Request) -> tuple[str, ...]:
    if request.path.endswith("/replies"):
        return ("body",)
    return ("title", "body", "targets", "requires_ack", "due_at", "broadcast_text")


# --- JSON -------------------------------------------------------------------------------------


def _t(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else None


def _attachment_json(a: NoticeAttachment) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "media_type": a.media_type,
        "name": a.name,
        "bytes": a.bytes,
        "url": f"/api/v1/notices/{a.notice_id}/attachments/{a.id}",
    }


def _notice_json(n: Notice, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": n.id,
        "title": n.title,
        "body": n.body,
        "sender": {"id": n.sender_id, "name": n.sender_name, "region": n.sender_region},
        "targets": n.targets,
        "villages": n.villages,
        "requires_ack": n.requires_ack,
        "due_at": _t(n.due_at, tz),
        "broadcast_text": n.broadcast_text,
        "created_at": _t(n.created_at, tz),
        "url": f"/api/v1/notices/{n.id}",
    }


def _mine_json(r: NoticeRecipient, tz: ZoneInfo, requires_ack: bool, due: datetime | None,
               now: datetime) -> dict[str, Any]:  # fmt: skip
    return {
        "read_at": _t(r.read_at, tz),
        "acknowledged_at": _t(r.acked_at, tz),
        "replied_at": _t(r.replied_at, tz),
        "aired_at": _t(r.aired_at, tz),
        "broadcast_id": r.broadcast_id,
        "village": r.village_code,
        "overdue": is_overdue(r, requires_ack, due, now),
    }


def _counts_json(c: Counts) -> dict[str, int]:
    return {"recipients": c.recipients, "read": c.read, "acknowledged": c.acked,
            "replied": c.replied, "aired": c.aired, "overdue": c.overdue}  # fmt: skip


def _reply_json(r: NoticeReply, files: dict[int, list[NoticeAttachment]], tz: ZoneInfo,
                heads: dict[int, NoticeRecipient]) -> dict[str, Any]:  # fmt: skip
    head = heads.get(r.recipient_id)
    return {
        "id": r.id,
        "body": r.body,
        "created_at": _t(r.created_at, tz),
        "village": head.village_code if head else None,
        "village_head": head.head_name if head else None,
        "photos": [_attachment_json(a) for a in files.get(r.id, [])],
    }


def _view_json(view: NoticeView, svc: NoticeService) -> dict[str, Any]:
    tz, n = svc.tz, view.notice
    body = _notice_json(n, tz)
    body["attachments"] = [_attachment_json(a) for a in view.attachments]
    body["can_air"] = view.can_air and view.recipient is not None
    body["replies"] = [_reply_json(r, view.reply_files, tz, view.heads) for r in view.replies]
    if view.recipient is not None:
        body["mine"] = _mine_json(view.recipient, tz, n.requires_ack, n.due_at, svc.now())
    else:
        body["receipts_url"] = f"/api/v1/notices/{n.id}/receipts"
    return body


def _receipts_json(rec: Receipts, svc: NoticeService) -> dict[str, Any]:
    tz, n, now = svc.tz, rec.notice, svc.now()
    totals, per_district = district_rates(rec.recipients, n.requires_ack, n.due_at, now)
    by_recipient: dict[int, list[NoticeReply]] = {}
    for reply in rec.replies:
        by_recipient.setdefault(reply.recipient_id, []).append(reply)
    heads = {r.id: r for r in rec.recipients}
    return {
        "notice": _notice_json(n, tz),
        "totals": totals.to_json(),
        "districts": [d.to_json() for d in per_district],
        "recipients": [
            {
                "id": r.id,
                "account_id": r.account_id,
                "village_head": r.head_name,
                "district": r.district_code,
                "village": r.village_code,
                "reminded_at": _t(r.reminded_at, tz),
                "reminders": r.reminders,
                "replies": [
                    _reply_json(x, rec.reply_files, tz, heads) for x in by_recipient.get(r.id, [])
                ],
                **_mine_json(r, tz, n.requires_ack, n.due_at, now),
            }
            for r in rec.recipients
        ],
        "headless_villages": rec.headless,
        "timeline": [{**p, "at": _t(p["at"], tz)} for p in timeline(rec.recipients)],
        "csv": f"/api/v1/notices/{n.id}/receipts.csv",
    }


# --- handlers ---------------------------------------------------------------------------------

_CREATE_DOC = body_spec(
    {"title": "string", "targets": "object"},
    {"body": "string", "requires_ack": "boolean", "due_at": "string", "broadcast_text": "string"},
    status=201,
)
_CREATE_DOC["requestBody"]["content"]["multipart/form-data"] = {
    "schema": {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "body": {"type": "string"},
            "targets": {"type": "string", "description": "the targets object as JSON"},
            "requires_ack": {"type": "boolean"},
            "due_at": {"type": "string"},
            "broadcast_text": {"type": "string"},
            "attachments": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
        "required": ["title", "targets"],
    }
}


@document(**_CREATE_DOC)
async def create(request: web.Request) -> web.Response:
    """Send a notice to the village heads of some villages (county or district staff).

    JSON, or multipart/form-data with ``attachments`` (PDF, images, audio). Answers ``201`` with
    the notice's id, how many village heads received it, and the targeted villages without one.
    """
    account = await require_account(request)
    svc = request.app[NOTICES]
    fields, files = await _form(request)
    try:
        draft = parse_draft(fields, now=svc.now(), tz=svc.tz)
    except BaseException:
        for f in files:
            f.path.unlink(missing_ok=True)
        raise
    sent = await svc.send(account, draft, files)
    url = f"/api/v1/notices/{sent.notice.id}"
    body = {
        "id": sent.notice.id,
        "recipients": sent.recipients,
        "headless_villages": sent.headless,
        "url": url,
    }
    return web.json_response(body, status=201, headers={"Location": url})


async def list_notices(request: web.Request) -> web.Response:
    """A village head's inbox (unread first, then newest), or the notices a staff member follows."""
    account = await require_account(request)
    svc = request.app[NOTICES]
    limit, offset = page_params(request)
    rows, total, unread = await svc.listing(account, limit, offset)
    now, items = svc.now(), []
    for n, mine, counts in rows:
        item = _notice_json(n, svc.tz)
        if mine is not None:
            item["mine"] = _mine_json(mine, svc.tz, n.requires_ack, n.due_at, now)
        if counts is not None:
            item["counts"] = _counts_json(counts)
        items.append(item)
    body = page(items, total, limit, offset)
    body["unread"] = unread
    return web.json_response(body)


async def get_one(request: web.Request) -> web.Response:
    """A notice; a village head opening it records the read receipt."""
    account = await require_account(request)
    svc = request.app[NOTICES]
    return web.json_response(_view_json(await svc.open(account, path_int(request)), svc))


async def get_attachment(request: web.Request) -> web.StreamResponse:
    """A file of the notice or of a reply (the audio as its MP3 rendition)."""
    account = await require_account(request)
    att, path = await request.app[NOTICES].attachment(
        account, path_int(request), path_int(request, "attachment")
    )
    disposition = "inline" if att.kind in ("image", "audio") else "attachment"
    ext = {"pdf": "pdf", "audio": "mp3"}.get(att.kind, att.media_type.rsplit("/", 1)[-1])
    return web.FileResponse(
        path,
        headers={
            "Content-Type": att.media_type,
            "Content-Disposition": f'{disposition}; filename="notice-{att.id}.{ext}"',
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def ack(request: web.Request) -> web.Response:
    """Confirm a notice (the village heads it was sent to)."""
    account = await require_account(request)
    svc = request.app[NOTICES]
    row = await svc.ack(account, path_int(request))
    return web.json_response({"id": row.notice_id, "acknowledged_at": _t(row.acked_at, svc.tz)})


@document(**body_spec({"body": "string"}, status=201))
async def reply(request: web.Request) -> web.Response:
    """Reply to a notice: ``{body}`` as JSON, or multipart with ``body`` and ``photos``."""
    account = await require_account(request)
    svc = request.app[NOTICES]
    fields, photos = await _form(request)
    row, files = await svc.reply(account, path_int(request), fields, photos)
    return web.json_response(_reply_json(row, {row.id: files}, svc.tz, {}), status=201)


async def receipts(request: web.Request) -> web.Response:
    """Per recipient: read, acknowledged, replied, aired; rates per district; overdue; timeline."""
    account = await require_account(request)
    svc = request.app[NOTICES]
    return web.json_response(_receipts_json(await svc.receipts(account, path_int(request)), svc))


async def receipts_csv_file(request: web.Request) -> web.Response:
    """The receipts as CSV for Excel (UTF-8 with BOM)."""
    account = await require_account(request)
    svc = request.app[NOTICES]
    rec = await svc.receipts(account, path_int(request))
    n, now, tz = rec.notice, svc.now(), svc.tz
    lines = [
        (r.district_code, r.village_code, r.head_name, _t(r.read_at, tz), _t(r.acked_at, tz),
         _t(r.replied_at, tz), r.replies, r.reminders, _t(r.aired_at, tz), r.broadcast_id,
         "yes" if is_overdue(r, n.requires_ack, n.due_at, now) else "")
        for r in rec.recipients
    ]  # fmt: skip
    return web.Response(
        body=receipts_csv(lines),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="notice-{n.id}-receipts.csv"'},
    )


async def remind(request: web.Request) -> web.Response:
    """Remind the recipients who have not read it (an event on their console)."""
    account = await require_account(request)
    reminded = await request.app[NOTICES].remind(account, path_int(request))
    return web.json_response(
        {"reminded": len(reminded), "villages": [r.village_code for r in reminded], "calls": 0}
    )


@document(**body_spec({}, {"dry_run": "boolean", "defer_quiet": "boolean"}))
async def air(request: web.Request) -> web.Response:
    """Air the notice to the village head's own village: ``dry_run`` shows the plan first.

    The notice's ``broadcast_text`` is spoken (TTS) — or its audio attachment played — through
    the one on-air path, like any broadcast; ``201`` with the broadcast, or ``200`` with the plan.
    """
    account = await require_account(request)
    data: dict[str, Any] = {}
    if request.can_read_body:
        data = await json_body(request, ("dry_run", "defer_quiet"))
    svc = request.app[NOTICES]
    created = await svc.air(
        account,
        path_int(request),
        dry_run=bool_field(data, "dry_run", default=False),
        defer_quiet=bool_field(data, "defer_quiet", default=False),
    )
    plan = [p.to_json(svc.tz) for p in created.plan.entries]
    if created.broadcast is None:
        return web.json_response(
            {
                "id": None,
                "status": "dry_run",
                "start_at": _t(created.plan.start, svc.tz),
                "plan": plan,
            }
        )
    b = created.broadcast
    url = f"/api/v1/broadcasts/{b.id}"
    return web.json_response(
        {"id": b.id, "status": b.status, "plan": plan, "url": url}, status=201,
        headers={"Location": url},
    )  # fmt: skip


def setup(app: web.Application) -> None:
    """Register the notice routes and the notice service (after the scheduler)."""
    app.cleanup_ctx.append(_service_ctx)
    base = r"/api/v1/notices/{id:[0-9]+}"
    app.router.add_post("/api/v1/notices", create)
    app.router.add_get("/api/v1/notices", list_notices)
    app.router.add_get(base, get_one)
    app.router.add_get(base + r"/attachments/{attachment:[0-9]+}", get_attachment)
    app.router.add_post(base + "/ack", ack)
    app.router.add_post(base + "/replies", reply)
    app.router.add_get(base + "/receipts", receipts)
    app.router.add_get(base + "/receipts.csv", receipts_csv_file)
    app.router.add_post(base + "/remind", remind)
    app.router.add_post(base + "/air", air)

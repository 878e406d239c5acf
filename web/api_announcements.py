"""Announcements: upload or type (TTS), status and list, and the replay files under ``/media``."""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast.played import played_in_village
from devices import policy
from devices import store as dstore
from devices.errors import InvalidField, UnsupportedMediaError
from devices.models import Account, Device, Listener
from recordings import store
from recordings.archive import disk_errors
from recordings.errors import UnknownAnnouncement, UnknownRendition, UploadTooLarge
from recordings.models import Announcement
from recordings.service import IngestService

from .auth import require_account, stream_token, token_client
from .keys import SESSIONMAKER, SETTINGS
from .validation import (
    iso_time,
    json_body,
    multipart_reader,
    page,
    page_params,
    path_int,
    text_field,
)

__all__ = ["INGEST", "announcement_json", "setup"]

log = logging.getLogger(__name__)

INGEST = web.AppKey("ingest", IngestService)

MAX_TITLE = 200
MAX_TEXT = 2000
MAX_QUERY = 100
_CHUNK = 256 * 1024
_MULTIPART_SLACK = 64 * 1024  # form fields and boundaries around the file
_FORMATS = ("mp3", "opus")
_MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg; codecs=opus"}


class UnsupportedUpload(UnsupportedMediaError):
    """Send multipart/form-data (file, title) or JSON (title, text)."""

    title_ko = "multipart/form-data(file, title) 또는 JSON(title, text)으로 보내 주세요"


# --- the service's lifecycle ----------------------------------------------------------------


async def _ingest(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    service = IngestService(
        app[SESSIONMAKER],
        settings.data_dir / "archive",
        workers=settings.ingest_workers,
        max_duration_s=settings.max_duration_s,
        timezone=settings.timezone,
        max_queued=settings.ingest_queue,
        min_free_bytes=settings.min_free_disk_mb * 1024 * 1024,
    )
    await service.start()
    app[INGEST] = service
    yield
    await service.close()


# --- JSON -----------------------------------------------------------------------------------


def announcement_json(row: Announcement, tz: str) -> dict[str, Any]:
    """The public JSON of an announcement."""
    renditions = {
        r.format: {
            "url": f"/media/announcements/{row.id}.{r.format}",
            "bytes": r.bytes,
            "bitrate": r.bitrate_kbps,
            "duration_s": round(r.duration_ms / 1000, 3),
            "sha256": r.sha256,
        }
        for r in sorted(row.renditions, key=lambda r: r.format)
    }
    meta = row.meta or {}
    return {
        "id": row.id,
        "title": row.title,
        "source": row.source,
        "status": row.status,
        "error": row.error,
        "error_ko": meta.get("error_ko") if row.error else None,
        "text": row.text,
        "original_name": row.original_name,
        "duration_s": round(row.duration_ms / 1000, 3) if row.duration_ms is not None else None,
        "loudness_lufs": row.loudness_lufs,
        "true_peak_dbtp": row.true_peak_dbtp,
        "sha256": row.sha256,
        "renditions": renditions,
        "peaks": row.peaks or [],
        "region": row.region_code,
        "created_by": row.created_by,
        "created_at": iso_time(row.created_at, tz),
        "ready_at": iso_time(row.ready_at, tz),
        "published_at": iso_time(row.published_at, tz),
    }


# --- who sees what --------------------------------------------------------------------------


def _missing(announcement_id: int) -> UnknownAnnouncement:
    """What a missing and an invisible announcement both answer (same status, same body)."""
    return UnknownAnnouncement(f"no announcement with id {announcement_id}")


def _staff_may_see(row: Announcement, visible: policy.Visibility) -> bool:
    """The one visibility rule: published, authored by the account, or within its regions."""
    return visible.sees(
        row.region_code, author_id=row.created_by, published=row.published_at is not None
    )


async def _visibility(request: web.Request, account: Account) -> policy.Visibility:
    async with request.app[SESSIONMAKER]() as session:
        return policy.visibility(account, await dstore.load_tree(session))


# --- handlers -------------------------------------------------------------------------------


async def create_announcement(request: web.Request) -> web.Response:
    """``POST /api/v1/announcements``: multipart upload (``file``, ``title``) or JSON text (TTS)."""
    account = await require_account(request)
    service = request.app[INGEST]
    if request.content_type == "multipart/form-data":
        announcement_id = await _upload(request, account, service)
    elif request.content_type == "application/x-www-form-urlencoded":
        raise InvalidField("file is required (send multipart/form-data)", field="file")
    elif request.content_type != "application/json":
        raise UnsupportedUpload(f"{request.content_type or 'no content type'} is not accepted here")
    else:
        data = await json_body(request, allowed=("title", "text"), required=("title", "text"))
        title = text_field(data, "title", max_len=MAX_TITLE)
        if isinstance(data.get("text"), str):
            data["text"] = " ".join(data["text"].split())  # newlines and tabs → spaces
        text = text_field(data, "text", max_len=MAX_TEXT)
        assert title is not None
        assert text is not None
        await service.admit()  # queue full: 503; disk low: 507
        announcement_id = await service.submit_text(
            text, title=title, created_by=account.id, region_code=account.region_code
        )
    return web.json_response(
        {"id": announcement_id, "status": "processing"},
        status=202,
        headers={"Location": f"/api/v1/announcements/{announcement_id}"},
    )


def safe_display_name(name: str | None) -> str | None:
    """A client's file name reduced to a harmless label (shown only; never used as a path)."""
    if not name:
        return None
    if re.search(r"%[0-9A-Fa-f]{2}", name):  # some clients percent-encode non-ASCII names
        with contextlib.suppress(UnicodeDecodeError):
            name = unquote(name, errors="strict")
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:255] or None


async def _upload(request: web.Request, account: Account, service: IngestService) -> int:
    limit = request.app[SETTINGS].max_upload_bytes
    if request.content_length is not None and request.content_length > limit + _MULTIPART_SLACK:
        raise UploadTooLarge(f"uploads are limited to {limit // (1024 * 1024)} MB")
    await service.admit(request.content_length or limit)  # queue full: 503; disk low: 507
    reader = await multipart_reader(request)
    title: str | None = None
    saved: Path | None = None
    original_name: str | None = None
    try:
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidField("nested multipart bodies are not accepted")
            if part.name == "title":
                raw = await part.read(decode=True)
                if len(raw) > MAX_TITLE * 4:
                    raise InvalidField(f"title is limited to {MAX_TITLE} characters", field="title")
                title = text_field(
                    {"title": raw.decode("utf-8", errors="replace")}, "title", max_len=MAX_TITLE
                )
            elif part.name == "file" and saved is None:
                original_name = safe_display_name(part.filename)
                saved = service.archive.new_incoming()
                with disk_errors("receiving the upload"):  # ENOSPC: a 507 problem
                    await _receive(part, saved, limit)
            else:
                await part.release()  # unknown fields are ignored
        if saved is None:
            raise InvalidField("file is required", field="file")
        if title is None:
            raise InvalidField("title is required", field="title")
        probe = await service.inspect(saved)  # refuses (and deletes) what is not audio
        return await service.submit_file(
            saved,
            title=title,
            source="upload",
            created_by=account.id,
            region_code=account.region_code,
            original_name=original_name,
            probe=probe,
        )
    except BaseException:
        if saved is not None:
            saved.unlink(missing_ok=True)
        raise


async def _next_part(reader: MultipartReader) -> Any:
    """The next form part; a malformed one (e.g. control characters in its headers) is a 422."""
    try:
        return await reader.next()
    except (BadHttpMessage, ValueError) as exc:
        raise InvalidField(f"malformed multipart body: {type(exc).__name__}") from None


async def _receive(part: BodyPartReader, path: Path, limit: int) -> None:
    """Stream one form part to disk (never whole in memory), enforcing the size limit."""
    written = 0
    with path.open("wb") as f:
        while chunk := await part.read_chunk(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise UploadTooLarge(f"uploads are limited to {limit // (1024 * 1024)} MB")
            f.write(chunk)


async def get_announcement(request: web.Request) -> web.Response:
    """``GET /api/v1/announcements/{id}``."""
    account = await require_account(request)
    announcement_id = path_int(request)
    visible = await _visibility(request, account)
    async with request.app[SESSIONMAKER]() as session:
        row = await store.get_announcement(session, announcement_id)
    if not _staff_may_see(row, visible):
        raise _missing(announcement_id)
    return web.json_response(announcement_json(row, request.app[SETTINGS].timezone))


async def list_announcements(request: web.Request) -> web.Response:
    """``GET /api/v1/announcements?limit=&offset=&q=``: newest first."""
    account = await require_account(request)
    limit, offset = page_params(request)
    query = request.query.get("q", "").strip() or None
    if query is not None and len(query) > MAX_QUERY:
        raise InvalidField(f"q must be at most {MAX_QUERY} characters", field="q")
    scope = (await _visibility(request, account)).regions
    async with request.app[SESSIONMAKER]() as session:
        rows = await store.list_announcements(
            session, limit=limit, offset=offset, query=query, region_codes=scope
        )
        total = await store.count_announcements(session, query=query, region_codes=scope)
    tz = request.app[SETTINGS].timezone
    return web.json_response(page([announcement_json(r, tz) for r in rows], total, limit, offset))


async def _replay_client(request: web.Request) -> Listener | Device | Account:
    """Who fetches a replay: a listener, speaker or API token (query or Bearer), or staff."""
    token = stream_token(request)
    if token is None:
        return await require_account(request)
    return await token_client(request, token)


async def _may_fetch(
    request: web.Request, session: AsyncSession, client: Listener | Device | Account, ann_id: int
) -> Announcement:
    """The announcement, if this client may hear it; exactly a missing one's 404 otherwise.

    Residents and speaker boxes hear only what was broadcast to their own village; staff what
    the visibility rule shows them.
    """
    if isinstance(client, Account):
        visible = await _visibility(request, client)
        row = await store.get_announcement(session, ann_id)
        if not _staff_may_see(row, visible):
            raise _missing(ann_id)
        return row
    if not await played_in_village(session, ann_id, client.village_code):
        raise _missing(ann_id)
    return await store.get_announcement(session, ann_id)


async def _note_replay(request: web.Request, announcement_id: int, listener_id: int) -> None:
    """Count a resident's replay; a failed write (a full disk) never refuses the file."""
    try:
        async with request.app[SESSIONMAKER]() as session:
            await store.record_replay(session, announcement_id, listener_id)
            await session.commit()
    except Exception as exc:
        log.warning("could not record a replay of announcement %s: %s", announcement_id, exc)


async def replay(request: web.Request) -> web.StreamResponse:
    """``GET /media/announcements/{id}.mp3|.opus``: the replay file (Range, ETag, caching)."""
    announcement_id = path_int(request)
    fmt = request.match_info["fmt"]
    client = await _replay_client(request)
    async with request.app[SESSIONMAKER]() as session:
        row = await _may_fetch(request, session, client, announcement_id)
        rendition = next((r for r in row.renditions if r.format == fmt), None)
    if row.status != "ready" or rendition is None:
        raise UnknownRendition(f"announcement {announcement_id} has no {fmt} file (yet)")
    try:
        first_byte = request.http_range.start in (None, 0)
    except ValueError:  # a malformed Range: FileResponse answers 416
        first_byte = False
    if isinstance(client, Listener) and request.method == "GET" and first_byte:
        await _note_replay(request, announcement_id, client.id)
    path = request.app[INGEST].rendition_path(rendition)
    response = web.FileResponse(
        path,
        headers={
            "Content-Type": _MEDIA_TYPES[fmt],
            # Content-addressed files never change; private because access needs a token.
            "Cache-Control": "private, max-age=31536000, immutable",
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="announcement-{announcement_id}.{fmt}"',
        },
    )
    return response  # aiohttp adds ETag, Last-Modified, Range (206/416) and conditionals


def setup(app: web.Application) -> None:
    """Register this module's routes and the ingest service."""
    app.cleanup_ctx.append(_ingest)
    app.router.add_post("/api/v1/announcements", create_announcement)
    app.router.add_get("/api/v1/announcements", list_announcements)
    app.router.add_get("/api/v1/announcements/{id}", get_announcement)
    app.router.add_get(r"/media/announcements/{id:[0-9]+}.{fmt:mp3|opus}", replay)

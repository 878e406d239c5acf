"""Announcements through the real app: upload every format, TTS, status, list, replay files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mutagen.id3 import ID3
from mutagen.oggopus import OggOpus

from tests.audio import ffprobe, integrated_lufs
from tests.recordings.conftest import audio_dir, encoded, speech  # noqa: F401 (fixtures)
from web.api_announcements import INGEST

pytestmark = pytest.mark.ffmpeg


async def upload(
    client: Any,
    headers: dict[str, str],
    path: Path,
    title: str = "경로잔치 안내",
    filename: str | None = None,
) -> Any:
    form = aiohttp.FormData()
    form.add_field("title", title)
    form.add_field(
        "file",
        path.read_bytes(),
        filename=filename or path.name,
        content_type="application/octet-stream",
    )
    return await client.post("/api/v1/announcements", data=form, headers=headers)


async def ready(client: Any, headers: dict[str, str], announcement_id: int) -> dict[str, Any]:
    status = await client.app[INGEST].wait_ready(announcement_id, timeout=120)
    resp = await client.get(f"/api/v1/announcements/{announcement_id}", headers=headers)
    body = await resp.json()
    assert status == body["status"]
    return body  # type: ignore[no-any-return]


async def test_wav_upload_becomes_ready_with_both_renditions(
    client: Any, admin_headers: dict[str, str], speech: Path
) -> None:
    resp = await upload(client, admin_headers, speech)
    assert resp.status == 202, await resp.text()
    created = await resp.json()
    assert created["status"] == "processing"
    body = await ready(client, admin_headers, created["id"])
    assert body["status"] == "ready", body
    assert body["renditions"]["mp3"]["bitrate"] == 64
    assert body["created_at"].endswith("+09:00")
    mp3 = client.app[INGEST].archive_root / "x"
    del mp3
    media = await client.get(body["renditions"]["mp3"]["url"], headers=admin_headers)
    assert media.status == 200
    data = await media.read()
    assert len(data) == body["renditions"]["mp3"]["bytes"]

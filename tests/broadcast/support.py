"""Helpers of the web-level broadcast tests: ready announcements with real channel-format MP3s,
speaker boxes, and stream readers that hold a box's connection open."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from devices import store as devices_store
from devices.models import Region
from recordings.models import Announcement, Rendition
from tests.audio import channel_mp3, tone_wav
from web.api_announcements import INGEST
from web.keys import SESSIONMAKER

SEOUL = ZoneInfo("Asia/Seoul")
_MP3: dict[float, bytes] = {}


def tone_mp3(seconds: float) -> bytes:
    """A channel-format MP3 of a tone (made once per length and process)."""
    if seconds not in _MP3:
        with tempfile.TemporaryDirectory() as tmp:
            wav = tone_wav(Path(tmp) / "t.wav", seconds, level_dbfs=-12)
            _MP3[seconds] = channel_mp3(wav, Path(tmp) / "t.mp3").read_bytes()
    return _MP3[seconds]


async def ready_announcement(
    app: Any, title: str = "경로잔치 안내", seconds: float = 1.0, region: str | None = None
) -> int:
    """A ``ready`` announcement (made in ``region``) whose mp3 rendition is a real file in the
    server's archive."""
    data = tone_mp3(seconds)
    rel = f"renditions/test/{secrets.token_hex(8)}.mp3"
    path = app[INGEST].archive.absolute(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    async with app[SESSIONMAKER]() as session:
        ann = Announcement(
            title=title,
            source="upload",
            status="ready",
            duration_ms=int(seconds * 1000),
            region_code=region,
        )
        session.add(ann)
        await session.flush()
        session.add(
            Rendition(
                announcement_id=ann.id,
                format="mp3",
                path=rel,
                bytes=len(data),
                bitrate_kbps=64,
                duration_ms=int(seconds * 1000),
                sha256="0" * 64,
            )
        )
        await session.commit()
        return ann.id


async def add_speaker(app: Any, village: str, name: str) -> tuple[int, str]:
    """A speaker box: id and token."""
    async with app[SESSIONMAKER]() as session:
        issued = await devices_store.create_device(session, village, name)
        await session.commit()
    return issued.id, issued.token


async def add_listener(app: Any, village: str, nickname: str) -> tuple[int, str]:
    """An active resident: id and token."""
    async with app[SESSIONMAKER]() as session:
        listener, token = await devices_store.create_listener(session, village, nickname, True)
        await session.commit()
    return listener.id, token


async def set_quiet_hours(app: Any, village: str, text: str | None) -> None:
    """Give a village its own quiet hours."""
    async with app[SESSIONMAKER]() as session:
        region = await session.get(Region, village)
        assert region is not None
        region.quiet_hours = text
        await session.commit()


def quiet_around_now(now: datetime) -> str:
    """Quiet hours from an hour before to an hour after ``now`` (Seoul wall clock)."""
    local = now.astimezone(SEOUL)
    a, b = local - timedelta(hours=1), local + timedelta(hours=1)
    return f"{a:%H:%M}-{b:%H:%M}"


def quiet_away_from_now(now: datetime) -> str:
    """Quiet hours that do not include the next few hours."""
    local = now.astimezone(SEOUL)
    a, b = local + timedelta(hours=6), local + timedelta(hours=7)
    return f"{a:%H:%M}-{b:%H:%M}"


@contextlib.asynccontextmanager
async def streaming(client: Any, village: str, token: str) -> AsyncIterator[bytearray]:
    """Hold a speaker box's stream connection open, collecting what it receives."""
    got = bytearray()
    resp = await client.get(f"/live/{village}.mp3", params={"token": token})
    assert resp.status == 200, await resp.text()

    async def pump() -> None:
        with contextlib.suppress(Exception):
            async for chunk in resp.content.iter_any():
                got.extend(chunk)

    task = asyncio.create_task(pump())
    try:
        yield got
    finally:
        resp.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""Fixtures of the broadcast tests: a migrated SQLite with Goseong, an announcement, a dispatcher
on a fake clock and fake channels."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcast.dispatcher import Dispatcher, DispatcherConfig
from broadcast.onair import OnAir
from broadcast.quiet import QuietHours
from devices import store as devices_store
from devices.events import EventBus
from devices.models import Account
from recordings.models import Announcement, Rendition
from tests.broadcast.fakes import FakeChannels, FakeClock, FakeMedia
from web.db import make_engine, make_sessionmaker, migrate

SEOUL = ZoneInfo("Asia/Seoul")
# 14:00 in Seoul on a Wednesday: outside quiet hours.
T0 = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


@pytest.fixture
async def sm(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated database (SQLite; PostgreSQL when configured) with Goseong."""
    engine = make_engine(database_url)
    await migrate(engine)
    maker = make_sessionmaker(engine)
    async with maker() as session:
        await devices_store.import_regions_file(session, devices_store.DEMO_REGIONS)
        await session.commit()
    yield maker
    await engine.dispose()


async def add_announcement(
    maker: async_sessionmaker[AsyncSession],
    root: Path,
    title: str = "경로잔치 안내",
    status: str = "ready",
    region: str | None = None,
) -> int:
    """An announcement row (made in ``region``) with an mp3 rendition file under ``root``."""
    async with maker() as session:
        ann = Announcement(title=title, source="upload", status=status, region_code=region)
        session.add(ann)
        await session.flush()
        if status == "ready":
            rel = f"a{ann.id}.mp3"
            (root / rel).write_bytes(b"\xff\xfb" + b"\0" * 100)
            session.add(
                Rendition(
                    announcement_id=ann.id,
                    format="mp3",
                    path=rel,
                    bytes=102,
                    bitrate_kbps=64,
                    duration_ms=1000,
                    sha256="0" * 64,
                )
            )
        await session.commit()
        return ann.id


async def add_account(
    maker: async_sessionmaker[AsyncSession], role: str = "admin", region: str = "48820"
) -> Account:
    """A staff account."""
    async with maker() as session:
        n = len(list(await session.scalars(Account.__table__.select())))
        account = await devices_store.create_account(
            session, f"{role}{n}", "pw-pw-pw-pw", role, region
        )
        await session.commit()
        return account


async def add_device(maker: async_sessionmaker[AsyncSession], village: str, name: str) -> int:
    """A speaker box."""
    async with maker() as session:
        issued = await devices_store.create_device(session, village, name)
        await session.commit()
        return issued.id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def channels(clock: FakeClock) -> FakeChannels:
    return FakeChannels(clock)


@pytest.fixture
def config() -> DispatcherConfig:
    return DispatcherConfig(tz=SEOUL, default_quiet=QuietHours.parse("21:00-06:00"))


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
def onair(
    sm: async_sessionmaker[AsyncSession],
    channels: FakeChannels,
    clock: FakeClock,
    config: DispatcherConfig,
    events: EventBus,
    tmp_path: Path,
) -> OnAir:
    """The on-air service on fake channels and a fake clock (its scheduler not running)."""
    for name in ("chime-start", "chime-end", "emergency-start", "emergency-end"):
        (tmp_path / f"{name}.mp3").write_bytes(b"\xff\xfb")
    return OnAir(sm, channels, FakeMedia(tmp_path), config, clock=clock, publish=events.publish)


@pytest.fixture
def dispatcher(onair: OnAir) -> Dispatcher:
    onair.dispatcher.attach()
    return onair.dispatcher


@pytest.fixture
def announcement(sm: async_sessionmaker[AsyncSession], tmp_path: Path) -> Callable[..., Any]:
    async def make(
        title: str = "경로잔치 안내", status: str = "ready", region: str | None = None
    ) -> int:
        return await add_announcement(sm, tmp_path, title, status, region)

    return make

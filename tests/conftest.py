"""Shared fixtures: a real app on a real SQLite file (and PostgreSQL where asked)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from devices import store
from web.app import create_app
from web.db import make_engine, make_sessionmaker, migrate
from web.keys import SESSIONMAKER
from web.models_registry import metadata
from web.settings import Settings

PG_URL = os.environ.get("VILLAGECAST_TEST_DATABASE_URL", "")


async def reset_postgres(url: str) -> None:
    """Drop every table so that a PostgreSQL test starts from an empty database."""
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: SQLite always; PostgreSQL when VILLAGECAST_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    if not PG_URL:
        pytest.skip("VILLAGECAST_TEST_DATABASE_URL is not set")
    await reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on a freshly migrated database (SQLite and PostgreSQL)."""
    engine = make_engine(database_url)
    await migrate(engine)
    async with make_sessionmaker(engine)() as session:
        yield session
    await engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a test server: its own data directory, SQLite."""
    return Settings(data_dir=tmp_path / "data", log_format="text")


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> Any:
    """An in-process test client of the real app, with Goseong County loaded."""
    app = create_app(settings)
    cli = await aiohttp_client(app)
    async with cli.app[SESSIONMAKER]() as session:
        await store.import_regions_file(session, store.DEMO_REGIONS)
        await session.commit()
    return cli


@pytest.fixture
def make_staff(client: Any) -> Callable[..., Any]:
    """``await make_staff(role, region)`` → Bearer headers of a new staff account."""
    counter = iter(range(1, 10_000))

    async def make(role: str = "admin", region: str = "48820") -> dict[str, str]:
        async with client.app[SESSIONMAKER]() as session:
            account = await store.create_account(
                session, f"{role}{next(counter)}", "correct horse battery", role, region
            )
            issued = await store.create_api_token(session, account, "test")
            await session.commit()
        return {"Authorization": f"Bearer {issued.token}"}

    return make


@pytest.fixture
async def admin_headers(make_staff: Callable[..., Any]) -> dict[str, str]:
    """Bearer headers of a county admin."""
    return await make_staff("admin", "48820")  # type: ignore[no-any-return]

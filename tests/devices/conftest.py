"""Fixtures of the registry tests."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from devices import store


@pytest.fixture
async def goseong(db: AsyncSession) -> AsyncSession:
    """The test database (SQLite, and PostgreSQL where asked) with Goseong County loaded."""
    await store.import_regions_file(db, store.DEMO_REGIONS)
    await db.commit()
    return db

"""The Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from web.db import alembic_config
from web.models_registry import metadata


async def test_migrated_schema_matches_the_models(db: AsyncSession) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return compare_metadata(ctx, metadata)

    conn = await db.connection()
    differences = await conn.run_sync(diff)
    assert differences == [], f"models changed without a migration: {differences}"


async def test_migrations_are_recorded_at_head(db: AsyncSession) -> None:
    version = (await db.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()

"""The database engine (SQLite WAL by default, PostgreSQL by URL) and Alembic migrations."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from . import models_registry  # noqa: F401  (every table on Base.metadata)

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # a database that stops answering fails a request within seconds (a 503), not after minutes
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=CONNECT_TIMEOUT_S,
        connect_args={"timeout": CONNECT_TIMEOUT_S},
    )


CONNECT_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 3.0


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means that the database cannot be reached (as opposed to a bad query)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # e.g. ConnectionRefusedError under asyncpg
        seen.add(id(exc))
        if isinstance(exc, ConnectionRefusedError | socket.gaierror) or (
            type(exc).__module__.startswith("asyncpg") and "Connection" in type(exc).__name__
        ):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


async def ping(engine: AsyncEngine, timeout_s: float = READY_TIMEOUT_S) -> str | None:
    """None when the database answers ``SELECT 1`` within ``timeout_s``; otherwise why not."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return f"the database did not answer within {timeout_s:g} s"
    except Exception as exc:  # any failure to answer is "not ready"; the reason is logged
        return f"the database cannot be reached ({type(exc).__name__})"
    return None


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that keep loaded values after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)

"""#11.14 (first half): a database outage is a 503 with Retry-After; /readyz says so, /healthz not.

Two real outages: PostgreSQL behind a TCP proxy that the test starts on 127.0.0.1 and then cuts
(every open connection closed, nothing listening), and a SQLite file whose directory goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import PG_URL, reset_postgres
from web.keys import ENGINE
from web.settings import Settings

from .foundation_helpers import add_account, app_client, login


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be cut (all connections closed) and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def _assert_outage(client: Any, headers: dict[str, str]) -> None:
    started = time.monotonic()
    resp = await client.get("/api/v1/devices", headers=headers)
    assert resp.status == 503, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert int(resp.headers["Retry-After"]) > 0
    body = await resp.json()
    assert body["type"] == "/problems/database-unavailable"
    assert "Unexpected" not in body["detail"]
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert "Retry-After" in ready.headers
    assert time.monotonic() - started < 15  # bounded: not a minute-long hang
    health = await client.get("/healthz")
    assert health.status == 200  # liveness: the process answers


@pytest.mark.postgres
async def test_postgres_going_away_gives_503_and_readiness_fails(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    if not PG_URL:
        pytest.skip("VILLAGECAST_TEST_DATABASE_URL is not set")
    await reset_postgres(PG_URL)
    parts = urlsplit(PG_URL)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    await proxy.start()
    netloc = (
        f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    )
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    client = await app_client(aiohttp_client, Settings(data_dir=tmp_path, database_url=url))
    await add_account(client, "admin1", "admin", "48820")
    headers = await login(client, "admin1")
    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/api/v1/devices", headers=headers)).status == 200

    await proxy.cut()
    await _assert_outage(client, headers)

    await proxy.start()  # the database is back on the same address
    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/api/v1/devices", headers=headers)).status == 200
    await proxy.cut()
    await client.close()


async def test_sqlite_made_unreachable_gives_503_and_readiness_fails(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    client = await app_client(aiohttp_client, Settings(data_dir=data))
    await add_account(client, "admin1", "admin", "48820")
    headers = await login(client, "admin1")
    assert (await client.get("/readyz")).status == 200

    # the database's directory is gone (a lost mount): no new connection can open it
    await client.app[ENGINE].dispose()
    data.rename(tmp_path / "data.away")
    data.write_text("not a directory")
    await _assert_outage(client, headers)

    data.unlink()
    (tmp_path / "data.away").rename(data)
    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/api/v1/devices", headers=headers)).status == 200

"""Authentication never depends on a write (issue 11.13): at 0 bytes free, reads still answer.

The database is made to refuse every write the way SQLite does on a full disk ("database or
disk is full"), below the app, on its real engine; reads keep working.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from devices.models import ApiToken
from tests.broadcast.support import add_listener, ready_announcement
from tests.web.replay_helpers import played
from web.keys import ENGINE, SESSIONMAKER

WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def disk_full(app: Any) -> Iterator[list[str]]:
    """Every INSERT/UPDATE/DELETE fails as on a full disk; yields the refused statements."""
    refused: list[str] = []
    engine = app[ENGINE].sync_engine

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            refused.append(statement.split()[0].upper())
            raise sqlite3.OperationalError("database or disk is full")

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield refused
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


async def _last_used(app: Any) -> list[datetime | None]:
    async with app[SESSIONMAKER]() as session:
        return list((await session.scalars(select(ApiToken.last_used_at))).all())


async def test_an_api_token_authenticates_when_no_write_succeeds(
    client: Any, admin_headers: dict[str, str]
) -> None:
    with disk_full(client.app) as refused:
        for path in ("/api/v1/announcements", "/api/v1/devices", "/api/v1/session"):
            resp = await client.get(path, headers=admin_headers)
            assert resp.status == 200, (path, await resp.text())
    assert refused == ["UPDATE"]  # one attempt to note the token's use, swallowed
    assert await _last_used(client.app) == [None]


async def test_token_use_is_written_at_most_once_a_minute(
    client: Any, admin_headers: dict[str, str]
) -> None:
    for _ in range(5):
        assert (await client.get("/api/v1/devices", headers=admin_headers)).status == 200
    [first] = await _last_used(client.app)
    assert first is not None
    for _ in range(5):
        await client.get("/api/v1/devices", headers=admin_headers)
    assert await _last_used(client.app) == [first]
    async with client.app[SESSIONMAKER]() as session:  # a minute later, the next use counts
        await session.execute(update(ApiToken).values(last_used_at=first - timedelta(minutes=2)))
        await session.commit()
    await client.get("/api/v1/devices", headers=admin_headers)
    [later] = await _last_used(client.app)
    assert later is not None
    assert later > datetime.now(UTC) - timedelta(seconds=30)


async def test_a_cookie_login_and_a_listener_read_when_no_write_succeeds(
    client: Any, make_staff: Any
) -> None:
    await make_staff("admin", "48820")
    login = await client.post(
        "/api/v1/session", json={"username": "admin1", "password": "correct horse battery"}
    )
    assert login.status == 200
    _, token = await add_listener(client.app, "goseong-eup-seongnae-ri", "박씨")
    with disk_full(client.app):
        assert (await client.get("/api/v1/session")).status == 200  # the cookie
        assert (await client.get("/api/v1/listeners/me", params={"token": token})).status == 200
        assert (await client.get("/api/v1/replays", params={"token": token})).status == 200


@pytest.mark.ffmpeg
async def test_a_replay_is_served_when_counting_it_fails(client: Any) -> None:
    app = client.app
    ann = await ready_announcement(app)
    await played(app, ann, "goseong-eup-seongnae-ri")
    _, token = await add_listener(app, "goseong-eup-seongnae-ri", "박씨")
    with disk_full(app) as refused:
        resp = await client.get(f"/media/announcements/{ann}.mp3", params={"token": token})
        assert resp.status == 200
        assert len(await resp.read()) > 1000
    assert refused == ["INSERT"]  # the replay count, swallowed

"""Helpers of the foundation's web tests: apps with custom settings, logins, row counts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from devices import store
from devices.models import (
    Account,
    ApiToken,
    AuditEntry,
    Device,
    DeviceGroup,
    DeviceGroupMember,
    Listener,
    LoginSession,
    Region,
)
from web.app import create_app
from web.keys import SESSIONMAKER
from web.settings import Settings

PASSWORD = "correct horse battery"
VILLAGE = "goseong-eup-seongnae-ri"
NEIGHBOUR = "goseong-eup-seooe-ri"  # same district
TABLES = (
    Account,
    ApiToken,
    AuditEntry,
    Device,
    DeviceGroup,
    DeviceGroupMember,
    Listener,
    LoginSession,
)


async def app_client(aiohttp_client: Any, settings: Settings) -> Any:
    """A test client of the real app with these settings and Goseong loaded."""
    cli = await aiohttp_client(create_app(settings))
    async with cli.app[SESSIONMAKER]() as session:
        await store.import_regions_file(session, store.DEMO_REGIONS)
        await session.commit()
    return cli


async def add_account(client: Any, username: str, role: str, region: str) -> int:
    """Create a staff account with :data:`PASSWORD`; its id."""
    async with client.app[SESSIONMAKER]() as session:
        account = await store.create_account(session, username, PASSWORD, role, region)
        await session.commit()
        return account.id


async def login(client: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in with the cookie; the CSRF header for unsafe requests."""
    resp = await client.post("/api/v1/session", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    return {"X-CSRF-Token": (await resp.json())["csrf_token"]}


async def row_counts(client: Any) -> dict[str, Any]:
    """Rows in every registry table, and the region settings: compare before and after."""
    out: dict[str, Any] = {}
    async with client.app[SESSIONMAKER]() as session:
        for table in TABLES:
            out[table.__tablename__] = await session.scalar(select(func.count()).select_from(table))
        rows = await session.execute(
            select(Region.code, Region.requires_listener_approval, Region.quiet_hours, Region.tags)
        )
        out["region_settings"] = sorted(map(tuple, rows.all()), key=lambda r: r[0])
    return out


async def other_district_village(client: Any) -> str:
    """A village outside the Goseong-eup district."""
    async with client.app[SESSIONMAKER]() as session:
        tree = await store.load_tree(session)
    district = tree.of_kind("district")[1]
    return tree.children(district.code)[0].code


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def venv_bin(name: str) -> str:
    """A program of the venv that runs the tests (``villagecast``, ``python``)."""
    return str(Path(sys.executable).parent / name)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any VILLAGECAST_ variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VILLAGECAST_")}
    env.update(extra)
    return env


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    """Wait until ``/healthz`` answers on the port (fails early when the server exits)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy")


def stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop a server we started (SIGINT, then SIGKILL) and return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return int(proc.returncode)

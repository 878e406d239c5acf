"""Retention: ``villagecast archive prune [--dry-run]`` as a real subprocess on a real archive."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from devices.orm import utcnow
from recordings.models import Announcement
from recordings.service import IngestService
from tests.recordings import conftest as audio_fixtures
from tests.web.foundation_helpers import clean_env, venv_bin
from tests.web.test_announcements import ready, upload
from web.api_announcements import INGEST
from web.keys import SESSIONMAKER
from web.settings import Settings

pytestmark = pytest.mark.ffmpeg

audio_dir = audio_fixtures.audio_dir
speech = audio_fixtures.speech
encoded = audio_fixtures.encoded


def prune(settings: Settings, *args: str, retention_days: int = 30) -> str:
    """Run the prune command against the test server's data directory."""
    proc = subprocess.run(
        [venv_bin("villagecast"), "archive", "prune", *args, "--data-dir", str(settings.data_dir)],
        capture_output=True, text=True, timeout=120, check=False,
        env=clean_env(VILLAGECAST_RETENTION_DAYS=str(retention_days)),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_prune_deletes_only_expired_announcements_and_their_files(
    client: Any, admin_headers: dict[str, str], settings: Settings, speech: Path,
    encoded: Callable[..., Path],
) -> None:  # fmt: skip
    old = await ready(
        client, admin_headers, (await (await upload(client, admin_headers, speech)).json())["id"]
    )
    other = encoded("speech-prune.flac", "-c:a", "flac")
    new = await ready(
        client, admin_headers, (await (await upload(client, admin_headers, other)).json())["id"]
    )
    async with client.app[SESSIONMAKER]() as session:
        await session.execute(
            update(Announcement)
            .where(Announcement.id == old["id"])
            .values(created_at=utcnow() - timedelta(days=100))
        )
        await session.commit()
    root = client.app[INGEST].archive_root
    old_files = [root / "originals" / old["sha256"][:2] / f"{old['sha256']}.wav"]
    old_files += [
        root / "renditions" / r["sha256"][:2] / f"{r['sha256']}.{fmt}"
        for fmt, r in old["renditions"].items()
    ]
    assert all(p.exists() for p in old_files)

    out = await asyncio.to_thread(prune, settings, "--dry-run")
    assert f"would delete announcement {old['id']}" in out
    assert f"announcement {new['id']}" not in out
    assert all(p.exists() for p in old_files)
    resp = await client.get(f"/api/v1/announcements/{old['id']}", headers=admin_headers)
    assert resp.status == 200

    out = await asyncio.to_thread(prune, settings)
    assert f"deleting announcement {old['id']}" in out
    assert not any(p.exists() for p in old_files)
    resp = await client.get(f"/api/v1/announcements/{old['id']}", headers=admin_headers)
    assert resp.status == 404
    resp = await client.get(f"/media/announcements/{new['id']}.mp3", headers=admin_headers)
    assert resp.status == 200


async def test_prune_keeps_everything_when_retention_is_off(
    client: Any, settings: Settings
) -> None:
    out = await asyncio.to_thread(prune, settings, "--dry-run", retention_days=0)
    assert "nothing to prune" in out


async def _plant_orphans(client: Any, speech: Path) -> tuple[Path, Path]:
    """An old original and an old rendition that no row refers to (a crash between the move
    into the archive and the commit), and a young one (a commit may still be coming)."""
    root = client.app[INGEST].archive_root
    old_original = root / "originals" / "ab" / f"{'ab' * 32}.wav"
    old_rendition = root / "renditions" / "cd" / f"{'cd' * 32}.mp3"
    young = root / "originals" / "ef" / f"{'ef' * 32}.wav"
    for path in (old_original, old_rendition, young):
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, speech, path)
    for path in (old_original, old_rendition):
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    return old_original, old_rendition


async def test_orphan_files_are_swept_at_start_and_by_prune(
    client: Any, admin_headers: dict[str, str], settings: Settings, speech: Path
) -> None:
    kept = await ready(
        client, admin_headers, (await (await upload(client, admin_headers, speech)).json())["id"]
    )
    root = client.app[INGEST].archive_root
    in_use = [p for p in root.rglob("*") if p.is_file() and "chimes" not in p.parts]
    for path in in_use:  # referenced files are kept, however old
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    orphans = await _plant_orphans(client, speech)
    young = root / "originals" / "ef" / f"{'ef' * 32}.wav"

    out = await asyncio.to_thread(prune, settings, "--dry-run", retention_days=0)
    assert all(f"would delete orphan file {p.relative_to(root)}" in out for p in orphans)
    assert all(p.exists() for p in orphans)
    out = await asyncio.to_thread(prune, settings, retention_days=0)
    assert not any(p.exists() for p in orphans)
    assert young.exists()
    assert all(p.exists() for p in in_use)

    # At start: the service sweeps before it takes any work.
    orphans = await _plant_orphans(client, speech)
    service = IngestService(client.app[SESSIONMAKER], root)
    await service.start()
    await service.close()
    assert not any(p.exists() for p in orphans)
    assert young.exists()
    assert all(p.exists() for p in in_use)
    resp = await client.get(f"/media/announcements/{kept['id']}.mp3", headers=admin_headers)
    assert resp.status == 200

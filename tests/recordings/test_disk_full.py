"""A full disk, for real: the data directory on a small tmpfs (needs root to mount; skipped else).

An upload that meets ENOSPC is a 507 problem and leaves nothing; a job that meets it frees its
scratch space, waits for space and finishes — or, when space does not return, fails with the true
reason (never "corrupt file"), and the row never stays ``processing``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.recordings import conftest as audio_fixtures
from tests.web.test_announcements_bad_input import assert_problem, client_with, nothing_written
from web.api_announcements import INGEST
from web.settings import Settings

pytestmark = pytest.mark.ffmpeg

audio_dir = audio_fixtures.audio_dir
speech = audio_fixtures.speech

MOUNT_MB = 48


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs mounted for this test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={MOUNT_MB}m", "tmpfs", str(mount)],
        capture_output=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Write a ballast file until only ``leave_bytes`` are free."""
    ballast = disk / "ballast"
    free = shutil.disk_usage(disk).free
    with ballast.open("ab") as f:
        size = max(0, free - leave_bytes)
        chunk = b"\0" * (1024 * 1024)
        while size > 0:
            f.write(chunk[: min(size, len(chunk))])
            size -= min(size, len(chunk))
    return ballast


@pytest.fixture
async def on_small_disk(aiohttp_client: Any, small_disk: Path) -> tuple[Any, dict[str, str]]:
    """The real app with its data directory on the small disk, without free-space admission
    (the disk fills while it works), polling for space every 0.2 s; and admin headers."""
    settings = Settings(
        data_dir=small_disk / "data", log_format="text", min_free_disk_mb=0, max_upload_mb=8
    )
    client, headers = await client_with(aiohttp_client, settings)
    client.app[INGEST].space_poll_s = 0.2
    return client, headers


def form(data: bytes) -> aiohttp.FormData:
    """A multipart upload of ``data``."""
    out = aiohttp.FormData()
    out.add_field("title", "안내")
    out.add_field("file", data, filename="speech.wav", content_type="audio/wav")
    return out


async def test_an_upload_that_meets_a_full_disk_is_a_507_and_leaves_nothing(
    on_small_disk: tuple[Any, dict[str, str]], small_disk: Path
) -> None:
    client, headers = on_small_disk
    ballast = small_disk / "ballast"
    boundary = "diskfullboundary123"

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n안내\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        yield b"RIFF" + bytes(256 * 1024)
        await asyncio.sleep(0.2)
        await asyncio.to_thread(fill, small_disk, 0)  # someone else fills the disk meanwhile
        for _ in range(16):
            yield bytes(256 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    ctype = f"multipart/form-data; boundary={boundary}"
    resp = await client.post(
        "/api/v1/announcements", data=body(), headers={**headers, "Content-Type": ctype}
    )
    assert resp.status == 507, await resp.text()
    problem = await resp.json()
    assert_problem(problem, 507)
    assert "disk space" in problem["detail"]
    assert problem["detail"].endswith("while receiving the upload")  # not the admission
    ballast.unlink()
    await nothing_written(client)


async def upload_to_a_nearly_full_disk(
    client: Any, headers: dict[str, str], disk: Path, speech: Path
) -> tuple[Path, int]:
    """Fill the disk to leave room for the upload, not for its 9 s of decoded PCM (1.7 MB),
    and upload; the ballast and the accepted announcement's id."""
    data = await asyncio.to_thread(speech.read_bytes)
    ballast = await asyncio.to_thread(fill, disk, 3 * len(data) // 2 + 256 * 1024)
    resp = await client.post("/api/v1/announcements", data=form(data), headers=headers)
    assert resp.status == 202, await resp.text()
    return ballast, (await resp.json())["id"]


async def test_a_job_that_meets_a_full_disk_frees_its_scratch_and_finishes_when_space_returns(
    on_small_disk: tuple[Any, dict[str, str]], small_disk: Path, speech: Path
) -> None:
    client, headers = on_small_disk
    ballast, announcement_id = await upload_to_a_nearly_full_disk(
        client, headers, small_disk, speech
    )
    service = client.app[INGEST]
    with pytest.raises(TimeoutError):
        await service.wait_ready(announcement_id, timeout=3)
    assert list((service.archive_root / "work").iterdir()) == []  # scratch freed while waiting
    ballast.unlink()  # space returns
    assert await service.wait_ready(announcement_id, timeout=60) == "ready"


async def test_a_job_fails_with_the_true_reason_when_space_does_not_return(
    on_small_disk: tuple[Any, dict[str, str]], small_disk: Path, speech: Path
) -> None:
    client, headers = on_small_disk
    service = client.app[INGEST]
    service.space_wait_s = 0.5
    ballast, announcement_id = await upload_to_a_nearly_full_disk(
        client, headers, small_disk, speech
    )
    assert await service.wait_ready(announcement_id, timeout=60) == "failed"
    resp = await client.get(f"/api/v1/announcements/{announcement_id}", headers=headers)
    body = await resp.json()
    assert "disk space" in body["error"]
    assert "corrupt" not in body["error"]
    assert list((service.archive_root / "work").iterdir()) == []
    ballast.unlink()

"""Bad uploads get a clear 4xx problem (Korean and English) and leave nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from devices import store as dstore
from recordings.models import Announcement
from tests.recordings import conftest as audio_fixtures
from tests.recordings import hostile
from web.api_announcements import INGEST
from web.app import create_app
from web.keys import SESSIONMAKER
from web.settings import Settings

pytestmark = pytest.mark.ffmpeg

audio_dir = audio_fixtures.audio_dir
speech = audio_fixtures.speech
encoded = audio_fixtures.encoded


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An 8 MB upload limit, so that the over-size case stays small (the 2-hour MP3 is 7 MB)."""
    return Settings(data_dir=tmp_path / "data", log_format="text", max_upload_mb=8)


def png_bytes() -> bytes:
    """A real 1×1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def two_hour_mp3(audio_dir: Path) -> Path:
    """A real two-hour MP3 (8 kbps, 7 MB)."""
    path = audio_dir / "two-hours.mp3"
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
             "-t", "7200", "-c:a", "libmp3lame", "-b:a", "8k", str(path)],
            check=True, timeout=120,
        )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def truncated_mp3(encoded: Callable[..., Path], audio_dir: Path) -> Path:
    """An MP3 cut to a third of its length: it decodes without error, its header claims more."""
    full = encoded("speech-trunc-src.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    data = full.read_bytes()
    path = audio_dir / "truncated.mp3"
    path.write_bytes(data[: len(data) // 3])
    return path


async def nothing_written(client: Any) -> None:
    """No announcement row and no file in the archive (chimes aside)."""
    async with client.app[SESSIONMAKER]() as session:
        assert await session.scalar(select(func.count(Announcement.id))) == 0
    root = client.app[INGEST].archive_root
    files = [p for p in root.rglob("*") if p.is_file() and "chimes" not in p.parts]
    assert files == []


async def post_file(
    client: Any, headers: dict[str, str], data: bytes, filename: str, title: str | None = "안내"
) -> Any:
    """POST a multipart upload (built by hand when the name has control characters)."""
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in filename):
        boundary = "vcboundary7MA4YWxkTrZu0gW"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{filename}"\r\nContent-Type: audio/wav\r\n\r\n'
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f"multipart/form-data; boundary={boundary}"
        return await client.post(
            "/api/v1/announcements", data=body, headers={**headers, "Content-Type": content_type}
        )
    form = aiohttp.FormData()
    if title is not None:
        form.add_field("title", title)
    form.add_field("file", data, filename=filename, content_type="audio/mpeg")
    return await client.post("/api/v1/announcements", data=form, headers=headers)


def assert_problem(body: dict[str, Any], status: int) -> None:
    """A problem+json body with Korean and English titles."""
    assert body["status"] == status
    assert body["title_en"]
    assert body["title_ko"]
    assert any("가" <= ch <= "힣" for ch in body["title_ko"])
    assert "Traceback" not in body["detail"]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("png-named-mp3", 415),
        ("empty", 422),
        ("truncated-mp3", 422),
        ("text-file", 415),
        ("two-hours", 422),
        ("over-size", 413),
        ("missing-title", 422),
        ("blank-title", 422),
        ("missing-file", 422),
    ],
)
async def test_bad_upload_is_refused_and_leaves_nothing(
    client: Any, admin_headers: dict[str, str], speech: Path, truncated_mp3: Path,
    two_hour_mp3: Path, case: str, status: int,
) -> None:  # fmt: skip
    read = asyncio.to_thread
    data, name = b"", "x.mp3"
    title: str | None = "안내"
    if case == "png-named-mp3":
        data = png_bytes()
    elif case == "truncated-mp3":
        data = await read(truncated_mp3.read_bytes)
    elif case == "text-file":
        data, name = "이것은 음성이 아닙니다.\n".encode() * 50, "notice.txt"
    elif case == "two-hours":
        data = await read(two_hour_mp3.read_bytes)
    elif case == "over-size":
        data = (await read(speech.read_bytes)) * 25  # > 8 MB
        assert len(data) > 8 * 1024 * 1024
    elif case in ("missing-title", "blank-title"):
        data, title = await read(speech.read_bytes), (None if case == "missing-title" else "  ")
    if case == "missing-file":
        form = aiohttp.FormData()
        form.add_field("title", "안내")
        resp = await client.post("/api/v1/announcements", data=form, headers=admin_headers)
    else:
        resp = await post_file(client, admin_headers, data, name, title)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert_problem(await resp.json(), status)
    await nothing_written(client)


async def test_unauthenticated_upload_is_refused(client: Any, speech: Path) -> None:
    resp = await post_file(client, {}, await asyncio.to_thread(speech.read_bytes), "speech.wav")
    assert resp.status == 401
    assert_problem(await resp.json(), 401)
    await nothing_written(client)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"title": "안내"}, 422),
        ({"text": "안녕하세요"}, 422),
        ({"title": "안내", "text": "가" * 2001}, 422),
        ({"title": "안내", "text": "   "}, 422),
        ({"title": "안내", "text": "안녕", "voice": "en"}, 422),
        ({"title": 5, "text": "안녕"}, 422),
    ],
)
async def test_bad_text_is_refused(
    client: Any, admin_headers: dict[str, str], body: dict[str, Any], status: int
) -> None:
    resp = await client.post("/api/v1/announcements", json=body, headers=admin_headers)
    assert resp.status == status
    assert_problem(await resp.json(), status)
    await nothing_written(client)


async def test_other_content_types_are_refused(client: Any, admin_headers: dict[str, str]) -> None:
    resp = await client.post(
        "/api/v1/announcements",
        data=b"RIFF....",
        headers={**admin_headers, "Content-Type": "audio/wav"},
    )
    assert resp.status == 415
    assert_problem(await resp.json(), 415)
    await nothing_written(client)


@pytest.mark.parametrize(
    "filename",
    [
        "../../x.mp3",
        "..\\..\\windows\\x.mp3",
        "/etc/passwd",
        "가" * 300 + ".wav",
        "a\x01b\x7fc\u202e.wav",
        "녹음 2026-11-25 오전 10.23.m4a",
    ],
    ids=["dotdot", "backslashes", "absolute", "300-chars", "control-chars", "phone-recording"],
)
async def test_hostile_file_names_are_never_used_as_paths(
    client: Any, admin_headers: dict[str, str], speech: Path, tmp_path: Path, filename: str
) -> None:
    before = {p for p in tmp_path.parent.rglob("*") if "data" not in p.parts}
    data = await asyncio.to_thread(speech.read_bytes)
    resp = await post_file(client, admin_headers, data, filename)
    if resp.status != 202:  # refusing a hostile name is fine, with a clear problem
        assert 400 <= resp.status < 500
        assert resp.content_type == "application/problem+json"
        await nothing_written(client)
        return
    announcement_id = (await resp.json())["id"]
    assert await client.app[INGEST].wait_ready(announcement_id, timeout=120) == "ready"
    body = await (
        await client.get(f"/api/v1/announcements/{announcement_id}", headers=admin_headers)
    ).json()
    shown = body["original_name"]
    assert "/" not in shown
    assert "\\" not in shown
    assert all(ch.isprintable() for ch in shown)
    assert len(shown) <= 255
    if filename.startswith("녹음"):
        assert shown == filename
    # Every file lives under the archive, named by its content.
    root = client.app[INGEST].archive_root
    for path in root.rglob("*"):
        if path.is_file() and "chimes" not in path.parts:
            stem = path.name.split(".")[0]
            assert len(stem) == 64
            assert all(c in "0123456789abcdef" for c in stem)
    after = {p for p in tmp_path.parent.rglob("*") if "data" not in p.parts}
    assert after - before == set()


# --- files built to hurt ffmpeg (tests/recordings/hostile.py) ---------------------------------


@pytest.fixture(scope="session")
def private_media(audio_dir: Path) -> Path:
    """A media file on the server's disk that no upload may reach."""
    return hostile.local_media(audio_dir / "private.m4a")


@pytest.mark.parametrize("kind", ["dash", "hls", "concat"])
async def test_a_manifest_named_mp3_is_refused_and_reads_nothing(
    client: Any, admin_headers: dict[str, str], private_media: Path, tmp_path: Path, kind: str
) -> None:
    make = {"dash": hostile.dash_manifest, "hls": hostile.hls_playlist,
            "concat": hostile.concat_script}[kind]  # fmt: skip
    manifest = make(tmp_path / f"{kind}.mp3", private_media)
    data = await asyncio.to_thread(manifest.read_bytes)
    resp = await post_file(client, admin_headers, data, "안내.mp3")
    assert resp.status == 415, await resp.text()
    body = await resp.json()
    assert_problem(body, 415)
    assert body["type"] == "/problems/not-audio"
    await nothing_written(client)


@pytest.fixture(scope="session")
def bomb(audio_dir: Path) -> Path:
    """54 KB of FLAC-in-Matroska that claims 37 s and decodes to an hour of silence."""
    return hostile.decompression_bomb(audio_dir / "bomb.mkv")


def _scratch_bytes(root: Path) -> int:
    total = 0
    for path in (root / "work").rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size if path.is_file() else 0
    return total


async def test_a_decompression_bomb_fails_without_writing_more_than_it_claims(
    client: Any, admin_headers: dict[str, str], bomb: Path
) -> None:
    data = await asyncio.to_thread(bomb.read_bytes)
    assert len(data) < 100_000
    resp = await post_file(client, admin_headers, data, "bomb.mkv")
    assert resp.status == 202, await resp.text()  # its container and packets say 37 s
    announcement_id = (await resp.json())["id"]
    service = client.app[INGEST]
    peak = 0
    waiting = asyncio.ensure_future(service.wait_ready(announcement_id, timeout=120))
    while not waiting.done():  # the scratch directory, sampled while the job runs
        peak = max(peak, await asyncio.to_thread(_scratch_bytes, service.archive_root))
        await asyncio.sleep(0.005)
    assert await waiting == "failed"
    body = await (
        await client.get(f"/api/v1/announcements/{announcement_id}", headers=admin_headers)
    ).json()
    assert "decodes to more than" in body["error"]
    assert body["error_ko"]
    # An hour of PCM is 691 MB; the decode was cut at 37 s × 1.25 + 5 s of PCM (~10 MB).
    assert peak <= (37 * 1.25 + 5) * 4 * 48000 + 300_000
    assert _scratch_bytes(service.archive_root) == 0


async def client_with(aiohttp_client: Any, settings: Settings) -> tuple[Any, dict[str, str]]:
    """A real app with these settings, Goseong loaded, and an admin's Bearer headers."""
    client = await aiohttp_client(create_app(settings))
    async with client.app[SESSIONMAKER]() as session:
        await dstore.import_regions_file(session, dstore.DEMO_REGIONS)
        account = await dstore.create_account(
            session, "county", "correct horse battery", "admin", "48820"
        )
        issued = await dstore.create_api_token(session, account, "test")
        await session.commit()
    return client, {"Authorization": f"Bearer {issued.token}"}


async def test_uploads_get_a_503_with_retry_after_when_the_queue_is_full(
    aiohttp_client: Any, settings: Settings, speech: Path
) -> None:
    client, headers = await client_with(
        aiohttp_client, settings.replace(ingest_queue=1, ingest_workers=1)
    )
    service = client.app[INGEST]
    await service.close()  # the worker stops: what is accepted now waits in the queue
    data = await asyncio.to_thread(speech.read_bytes)
    first = await post_file(client, headers, data, "first.wav")
    assert first.status == 202
    second = await post_file(client, headers, data, "second.wav")
    assert second.status == 503
    assert second.headers["Retry-After"] == "30"
    body = await second.json()
    assert_problem(body, 503)
    assert body["type"] == "/problems/ingest-busy"
    text = await client.post(
        "/api/v1/announcements", json={"title": "안내", "text": "안녕하세요"}, headers=headers
    )
    assert text.status == 503


async def test_uploads_get_a_507_when_the_disk_is_low(
    aiohttp_client: Any, settings: Settings, speech: Path
) -> None:
    client, headers = await client_with(aiohttp_client, settings.replace(min_free_disk_mb=10**9))
    resp = await post_file(client, headers, await asyncio.to_thread(speech.read_bytes), "x.wav")
    assert resp.status == 507
    body = await resp.json()
    assert_problem(body, 507)
    assert body["type"] == "/problems/storage-full"
    assert body["title_en"] == "The server is short of disk space; try again later."
    await nothing_written(client)

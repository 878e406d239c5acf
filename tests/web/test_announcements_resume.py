"""A real `villagecast serve` killed (SIGKILL) during processing finishes the job after restart."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devices import store as dstore
from tests.recordings import conftest as audio_fixtures
from tests.web.foundation_helpers import clean_env, free_port, stop, venv_bin, wait_healthy
from web.db import make_engine, make_sessionmaker, migrate

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

audio_dir = audio_fixtures.audio_dir
speech = audio_fixtures.speech


@pytest.fixture(scope="session")
def long_speech(audio_dir: Path, speech: Path) -> Path:
    """About two and a half minutes of speech as FLAC: long enough to be caught while processing."""
    path = audio_dir / "long-speech.flac"
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-stream_loop", "16", "-i", str(speech),
             "-c:a", "flac", str(path)],
            check=True, timeout=120,
        )  # fmt: skip
    return path


async def _prepare(data_dir: Path) -> str:
    engine = make_engine(f"sqlite+aiosqlite:///{data_dir / 'villagecast.db'}")
    await migrate(engine)
    async with make_sessionmaker(engine)() as session:
        await dstore.import_regions_file(session, dstore.DEMO_REGIONS)
        account = await dstore.create_account(
            session, "county", "correct horse battery", "admin", "48820"
        )
        issued = await dstore.create_api_token(session, account, "test")
        await session.commit()
    await engine.dispose()
    return issued.token


def _request(url: str, token: str, body: bytes | None = None, ctype: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if ctype:
        headers["Content-Type"] = ctype
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _upload(base: str, token: str, path: Path) -> int:
    boundary = "resumeboundary0123456789"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n긴 안내\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.flac"\r\n'
            "Content-Type: audio/flac\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    created = _request(
        f"{base}/api/v1/announcements", token, body, f"multipart/form-data; boundary={boundary}"
    )
    return int(created["id"])


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [venv_bin("villagecast"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=clean_env(VILLAGECAST_LOG_FORMAT="text", VILLAGECAST_INGEST_WORKERS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_killed_server_resumes_processing_after_restart(tmp_path: Path, long_speech: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True)
    token = asyncio.run(_prepare(data_dir))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(data_dir, port)
    try:
        wait_healthy(port, proc)
        announcement_id = _upload(base, token, long_speech)
        time.sleep(0.5)  # the worker has started decoding
        assert _request(f"{base}/api/v1/announcements/{announcement_id}", token)["status"] == (
            "processing"
        )
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait(timeout=10)
    finally:
        stop(proc)
    assert list((data_dir / "archive" / "work").iterdir())  # the job's scratch files are left

    proc = _serve(data_dir, port)
    try:
        wait_healthy(port, proc)
        deadline = time.monotonic() + 180
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = _request(f"{base}/api/v1/announcements/{announcement_id}", token)
            if body["status"] != "processing":
                break
            time.sleep(0.5)
        assert body["status"] == "ready", body
        assert body["duration_s"] > 140
        assert body["loudness_lufs"] == pytest.approx(-16, abs=1)
        assert set(body["renditions"]) == {"mp3", "opus"}
    finally:
        assert stop(proc) in (0, -2, 130)
    assert list((data_dir / "archive" / "work").iterdir()) == []

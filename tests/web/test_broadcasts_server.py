"""End to end with a real server process, a real ffmpeg stream client and the real clock:
a broadcast starts on time, a cancelled one never plays, one scheduled before a restart
(SIGTERM, start again on the same data) plays late exactly once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.broadcast.server import ServerProcess, StreamClient, api_token, tts_announcement

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

SEONGNAE = "goseong-eup-seongnae-ri"
TEXT = "오늘 오전 열시 마을회관에서 경로잔치가 열립니다."


async def call(method: str, url: str, headers: dict[str, str], **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, url, **kwargs) as resp,
    ):
        return resp.status, await resp.json()


async def wait_status(
    url: str, headers: dict[str, str], bid: int, statuses: set[str], limit_s: float
) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        _, body = await call("GET", f"{url}/api/v1/broadcasts/{bid}", headers)
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"broadcast {bid} still {body['status']}"
        await asyncio.sleep(0.2)


async def schedule(
    server: ServerProcess, ahead_s: float, **extra: Any
) -> tuple[dict[str, str], str, datetime, Any]:
    """An admin's broadcast to Seongnae ``ahead_s`` ahead: headers, box token, start, body."""
    headers = await api_token(server.url, "admin", server.demo_password())
    _, token = server.demo_speaker(SEONGNAE)
    ann = await tts_announcement(server.url, headers, "경로잔치 안내", TEXT)
    start = datetime.now(UTC) + timedelta(seconds=ahead_s)
    status, body = await call(
        "POST", f"{server.url}/api/v1/broadcasts", headers,
        json={"announcement_id": ann, "targets": {"villages": [SEONGNAE]},
              "start_at": start.isoformat(), **extra},
    )  # fmt: skip
    assert status == 201, body
    return headers, token, start, body


async def connected(client: StreamClient) -> None:
    """Give ffmpeg a moment to open the stream (it sends nothing audible before a broadcast)."""
    await asyncio.sleep(1.0)
    assert client.proc is not None
    assert client.proc.returncode is None, "ffmpeg could not open the stream"


async def test_starts_on_time_and_a_cancelled_one_never_plays(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    await server.start()
    try:
        headers = await api_token(server.url, "admin", server.demo_password())
        _, token = server.demo_speaker(SEONGNAE)
        ann = await tts_announcement(server.url, headers, "경로잔치 안내", TEXT)
        async with StreamClient(f"{server.url}/live/{SEONGNAE}.mp3?token={token}") as client:
            await connected(client)
            start = datetime.now(UTC) + timedelta(seconds=3)
            status, body = await call(
                "POST", f"{server.url}/api/v1/broadcasts", headers,
                json={"announcement_id": ann, "targets": {"villages": [SEONGNAE]},
                      "start_at": start.isoformat()},
            )  # fmt: skip
            assert status == 201, body
            done = await wait_status(server.url, headers, body["id"], {"done", "partial"}, 60)
            assert client.loud_at, "the speaker heard nothing"
            onset = client.loud_at[0] - start.timestamp()
            assert -0.05 <= onset < 1.0, f"first audible audio {onset:+.3f} s from the start time"
            started = datetime.fromisoformat(done["occurrences"][0]["started_at"])
            assert timedelta(0) <= started - start < timedelta(seconds=1)
            assert done["report"]["totals"]["reached"] == 1
            heard = client.loud_seconds

            # A second one, cancelled before its time: the box hears nothing more.
            start = datetime.now(UTC) + timedelta(seconds=3)
            status, body = await call(
                "POST", f"{server.url}/api/v1/broadcasts", headers,
                json={"announcement_id": ann, "targets": {"villages": [SEONGNAE]},
                      "start_at": start.isoformat()},
            )  # fmt: skip
            assert status == 201
            status, cancelled = await call(
                "POST", f"{server.url}/api/v1/broadcasts/{body['id']}/cancel", headers
            )
            assert status == 200
            assert cancelled["status"] == "cancelled"
            await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 3.0)
            assert client.loud_seconds == heard
            _, after = await call("GET", f"{server.url}/api/v1/broadcasts/{body['id']}", headers)
            assert after["status"] == "cancelled"
            assert after["occurrences"][0]["started_at"] is None
    finally:
        assert await server.stop() == 0


async def test_scheduled_before_a_restart_plays_late_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data)
    await first.start()
    try:
        headers, token, start, body = await schedule(first, 4, repeat=3)
        bid = body["id"]
    finally:
        assert await first.stop() == 0  # SIGTERM before its time
    # Down across the start time.
    await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 1.5)

    second = ServerProcess(data, port=first.port)
    await second.start()
    try:
        async with StreamClient(f"{second.url}/live/{SEONGNAE}.mp3?token={token}") as client:
            done = await wait_status(second.url, headers, bid, {"done", "partial", "missed"}, 60)
            assert done["status"] in ("done", "partial")  # played, late (inside 10 min)
            assert len(done["occurrences"]) == 1
            started = datetime.fromisoformat(done["occurrences"][0]["started_at"])
            assert started - start > timedelta(seconds=1)
            assert client.loud_at, (
                done,
                len(client.samples),
                client.proc and client.proc.returncode,
            )
            heard = client.loud_seconds
            await asyncio.sleep(2.0)
            assert client.loud_seconds == heard  # and nothing after it ended
    finally:
        assert await second.stop() == 0

    third = ServerProcess(data, port=first.port)  # and again: it must not play a second time
    await third.start()
    try:
        async with StreamClient(f"{third.url}/live/{SEONGNAE}.mp3?token={token}") as client:
            await asyncio.sleep(3.0)
            assert client.loud_at == []
        _, again = await call("GET", f"{third.url}/api/v1/broadcasts/{bid}", headers)
        assert again["status"] == done["status"]
        assert again["occurrences"] == done["occurrences"]
    finally:
        assert await third.stop() == 0


async def test_queued_behind_another_at_a_crash_still_plays_after_the_restart(
    tmp_path: Path,
) -> None:
    """Issue 11 item 11: kill -9 while one broadcast plays and a second waits in the channel's
    queue (memory only): after the restart the cut one is ``partial`` and never replayed, the
    queued one plays (it never started: still due inside its validity window), and no ``missed``."""
    data = tmp_path / "data"
    first = ServerProcess(data)
    await first.start()
    try:
        headers = await api_token(first.url, "admin", first.demo_password())
        _, token = first.demo_speaker(SEONGNAE)
        ann = await tts_announcement(first.url, headers, "경로잔치 안내", TEXT)
        body: dict[str, Any] = {"announcement_id": ann, "targets": {"villages": [SEONGNAE]}}
        status, playing = await call(
            "POST", f"{first.url}/api/v1/broadcasts", headers, json={**body, "repeat": 3}
        )
        assert status == 201, playing
        await wait_status(first.url, headers, playing["id"], {"playing"}, 10)
        status, queued = await call("POST", f"{first.url}/api/v1/broadcasts", headers, json=body)
        assert status == 201, queued
        assert queued["plan"][0]["outcome"] == "queued"
        await asyncio.sleep(1.0)  # handed to the channel, waiting behind the first
    finally:
        await first.kill()
    second = ServerProcess(data, port=first.port)
    await second.start()
    try:
        async with StreamClient(f"{second.url}/live/{SEONGNAE}.mp3?token={token}") as client:
            await connected(client)
            cut = await wait_status(second.url, headers, playing["id"], {"partial", "done"}, 10)
            assert cut["status"] == "partial"
            later = await wait_status(second.url, headers, queued["id"], {"done", "missed"}, 60)
            assert later["status"] == "done", later
            assert client.loud_at
    finally:
        assert await second.stop() == 0


async def test_sigterm_stops_the_scheduler_first_and_loses_nothing_due_meanwhile(
    tmp_path: Path,
) -> None:
    """Issue 11 item 12: with a slow upload in flight, SIGTERM used to close the streams and keep
    dispatching for a minute: a broadcast due then "played" to nobody (``partial``). Now the
    scheduler stops first, the exit is bounded, and that broadcast plays after the restart."""
    data = tmp_path / "data"
    first = ServerProcess(data)
    await first.start()
    try:
        headers, token, start, body = await schedule(first, 3)
        # a slow upload: headers and a few bytes of a large body, then nothing
        _, writer = await asyncio.open_connection("127.0.0.1", first.port)
        writer.write(
            b"POST /api/v1/announcements HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: {headers['Authorization']}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 9000000\r\n\r\n"
            + b"--b\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.5)
    finally:
        t0 = time.monotonic()
        assert await first.stop() == 0  # SIGTERM before its time; it comes due meanwhile
        took = time.monotonic() - t0
    writer.close()
    assert took < 15, f"shutdown took {took:.1f} s"
    await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.5)
    second = ServerProcess(data, port=first.port)
    await second.start()
    try:
        async with StreamClient(f"{second.url}/live/{SEONGNAE}.mp3?token={token}") as client:
            await connected(client)
            done = await wait_status(
                second.url, headers, body["id"], {"done", "partial", "missed"}, 60
            )
            assert done["status"] == "done", done  # played once, late, to the box
            assert client.loud_at
    finally:
        assert await second.stop() == 0

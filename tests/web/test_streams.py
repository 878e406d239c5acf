"""The MP3 mount through the real app and real sockets, with ffmpeg/ffprobe as the players."""

# ruff: noqa: F811  (the fixtures are imported from tests/streaming/fixtures.py)

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streaming.items import ItemReport, PlayItem, Priority
from tests.audio import decode_pcm, loud_seconds, rms_dbfs
from tests.streaming.fixtures import (  # noqa: F401 (fixtures)
    VILLAGE_A,
    VILLAGE_B,
    Player,
    long_tone_mp3,
    make_device,
    make_listener,
    reports,
    short_tone_mp3,
    speech_mp3,
    wait_for,
)
from web.streams import HUB

pytestmark = pytest.mark.ffmpeg


def _url(client: Any, path: str, token: str) -> str:
    return str(client.make_url(path).with_query(token=token))


@pytest.mark.slow
async def test_announcement_reaches_its_village_only(
    client: Any, make_device: Callable[..., Any], speech_mp3: Path, reports: list[ItemReport]
) -> None:
    hub = client.app[HUB]
    _, token_a = await make_device(VILLAGE_A)
    _, token_b = await make_device(VILLAGE_B)
    expected = loud_seconds(await asyncio.to_thread(decode_pcm, speech_mp3))
    play_s = expected + 4.0
    a = await Player(_url(client, f"/live/{VILLAGE_A}.mp3", token_a), play_s).start()
    b = await Player(_url(client, f"/live/{VILLAGE_B}.mp3", token_b), play_s).start()
    try:
        await wait_for(lambda: hub.listener_count(VILLAGE_A) == 1 == hub.listener_count(VILLAGE_B))
        await asyncio.sleep(0.5)
        placement = hub.offer(PlayItem("i1", VILLAGE_A, "경로잔치 안내", (speech_mp3,)))
        assert placement.outcome == "plays_now"
        heard_a, heard_b = await a.samples(), await b.samples()
    finally:
        await a.stop()
        await b.stop()
    assert abs(loud_seconds(heard_a) - expected) <= 0.5
    assert rms_dbfs(heard_a) > -40
    assert loud_seconds(heard_b) == 0.0
    assert rms_dbfs(heard_b) < -70 or not np.any(heard_b)
    assert [r.event for r in reports] == ["started", "finished"]


async def test_ffprobe_reads_icy_headers_and_stream_title(
    client: Any, make_device: Callable[..., Any], long_tone_mp3: Path
) -> None:
    hub = client.app[HUB]
    _, token = await make_device(VILLAGE_A)
    hub.offer(PlayItem("t1", VILLAGE_A, "수도 공사 안내", (long_tone_mp3,)))
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-icy", "1", "-read_intervals", "%+#120",
        "-show_entries", "packet=size", "-show_format", "-show_streams", "-of", "json",
        _url(client, f"/live/{VILLAGE_A}.mp3", token),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    info = json.loads(out)
    tags = info["format"]["tags"]
    assert tags["icy-br"] == "64"
    assert "마을방송" in tags["icy-name"]
    assert tags["StreamTitle"] == "수도 공사 안내"
    (stream,) = info["streams"]
    assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("mp3", "48000", 1)


async def test_wrong_and_missing_tokens_are_refused(
    client: Any, make_device: Callable[..., Any], make_listener: Callable[..., Any]
) -> None:
    _, token = await make_device(VILLAGE_A)
    _, listener = await make_listener(VILLAGE_A)
    resp = await client.get(f"/live/{VILLAGE_A}.mp3")
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    resp = await client.get(f"/live/{VILLAGE_A}.mp3", params={"token": "speaker_nope"})
    assert resp.status == 401
    resp = await client.get(f"/live/{VILLAGE_B}.mp3", params={"token": token})
    assert resp.status == 403
    resp = await client.get(
        f"/live/{VILLAGE_B}.mp3", headers={"Authorization": f"Bearer {listener}"}
    )
    assert resp.status == 403
    resp = await client.get("/live/atlantis.mp3", params={"token": token})
    assert resp.status == 404
    assert (await resp.json())["status"] == 404


async def test_playlist_points_at_the_stream_with_the_token(
    client: Any, make_listener: Callable[..., Any]
) -> None:
    _, token = await make_listener(VILLAGE_A)
    resp = await client.get(f"/live/{VILLAGE_A}.m3u", params={"token": token})
    assert resp.status == 200
    assert resp.content_type == "audio/x-mpegurl"
    lines = (await resp.text()).splitlines()
    assert lines[0] == "#EXTM3U"
    assert lines[-1].endswith(f"/live/{VILLAGE_A}.mp3?token={token}")


@pytest.mark.slow
async def test_emergency_preempts_routine_item_within_a_second(
    client: Any,
    make_device: Callable[..., Any],
    make_listener: Callable[..., Any],
    long_tone_mp3: Path,
    short_tone_mp3: Path,
    reports: list[ItemReport],
) -> None:
    hub = client.app[HUB]
    clients = [await make_device(VILLAGE_A) for _ in range(2)]
    clients += [await make_listener(VILLAGE_A) for _ in range(2)]
    players = [
        await Player(_url(client, f"/live/{VILLAGE_A}.mp3", t), 9.0).start() for _, t in clients
    ]
    try:
        await wait_for(lambda: hub.listener_count(VILLAGE_A) == 4)
        hub.offer(PlayItem("routine", VILLAGE_A, "routine", (long_tone_mp3,)))
        await asyncio.sleep(3.0)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        placement = hub.offer(
            PlayItem("sos", VILLAGE_A, "태풍 경보", (short_tone_mp3,), Priority.EMERGENCY)
        )
        assert placement.outcome == "preempts"
        await wait_for(lambda: any(r.event == "preempted" for r in reports))
        assert loop.time() - t0 < 1.0
        await wait_for(lambda: any(r.event == "finished" for r in reports), timeout=10)
        assert hub.listener_count(VILLAGE_A) == 4
        heard = [await p.samples() for p in players]
    finally:
        for p in players:
            await p.stop()
    assert [(r.item_id, r.event) for r in reports] == [
        ("routine", "started"),
        ("routine", "preempted"),
        ("sos", "started"),
        ("sos", "finished"),
    ]
    for samples in heard:
        # 16 kHz: the 1 kHz emergency tone follows the 440 Hz one within a second of the cut
        spectrum_440, spectrum_1k = _band_seconds(samples, 440.0), _band_seconds(samples, 1000.0)
        assert spectrum_440 >= 2.0
        assert 2.5 <= spectrum_1k <= 3.5


def _band_seconds(samples: np.ndarray, freq: float, rate: int = 16000) -> float:
    """Seconds of 100 ms windows whose strongest frequency is ``freq`` (±30 Hz)."""
    win = rate // 10
    frames = samples[: samples.size // win * win].reshape(-1, win)
    spectra = np.abs(np.fft.rfft(frames, axis=1))
    peaks = np.argmax(spectra, axis=1) * rate / win
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 0.01
    return float(np.sum((np.abs(peaks - freq) <= 30) & loud) * 0.1)


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_raw_body_without_chunked_framing_for_http_10_and_11(
    client: Any, make_listener: Callable[..., Any], version: str
) -> None:
    from streaming.mp3 import SILENCE_FRAME

    _, token = await make_listener(VILLAGE_A)
    port = client.make_url("/").port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /live/me.mp3?token={token} HTTP/{version}\r\nHost: x\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        body = await asyncio.wait_for(reader.readexactly(21 * len(SILENCE_FRAME)), 5)
    finally:
        writer.close()
    lines = head.decode().split("\r\n")
    assert lines[0] == f"HTTP/{version} 200 OK"
    fields = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    assert fields["content-type"] == "audio/mpeg"
    assert "transfer-encoding" not in fields
    assert "content-length" not in fields
    assert "icy-metaint" not in fields
    assert body == SILENCE_FRAME * 21  # the burst of an idle channel, bare MP3 frames

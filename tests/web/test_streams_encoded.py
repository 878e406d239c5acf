"""The Ogg/Opus mount and HLS through the real app, read by ffmpeg/ffprobe."""

# ruff: noqa: F811  (the fixtures are imported from tests/streaming/fixtures.py)

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streaming.items import ItemReport, PlayItem
from tests.audio import loud_seconds
from tests.streaming.fixtures import (  # noqa: F401 (fixtures)
    VILLAGE_A,
    Player,
    long_tone_mp3,
    make_listener,
    reports,
    wait_for,
)
from web.streams import HUB, OGG

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]


async def _run(*args: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    return out


async def test_ogg_opus_stream_plays_the_channel(
    client: Any, make_listener: Callable[..., Any], long_tone_mp3: Path, reports: list[ItemReport]
) -> None:
    listener_id, token = await make_listener(VILLAGE_A)
    client.app[HUB].offer(PlayItem("t", VILLAGE_A, "tone", (long_tone_mp3,)))
    url = str(client.make_url(f"/live/{VILLAGE_A}.ogg").with_query(token=token))
    first = await Player(url, 4.0).start()
    second = await Player(url, 3.0).start()
    try:
        await wait_for(lambda: client.app[OGG].listener_count(VILLAGE_A) == 2)
        heard = [await first.samples(), await second.samples()]
    finally:
        await first.stop()
        await second.stop()
    assert loud_seconds(heard[0]) >= 3.5
    assert loud_seconds(heard[1]) >= 2.5
    await wait_for(lambda: client.app[OGG].listener_count(VILLAGE_A) == 0)
    assert client.app[HUB].cancel("t")
    assert reports[-1].listener_ids == {listener_id}
    info = json.loads(await _run("ffprobe", "-v", "error", "-show_streams", "-of", "json", url))
    assert info["streams"][0]["codec_name"] == "opus"


async def test_hls_playlist_is_read_and_its_segments_decode(
    client: Any,
    make_listener: Callable[..., Any],
    long_tone_mp3: Path,
    tmp_path: Path,
    reports: list[ItemReport],
) -> None:
    listener_id, token = await make_listener(VILLAGE_A)
    client.app[HUB].offer(PlayItem("t", VILLAGE_A, "tone", (long_tone_mp3,)))
    resp = await client.get(f"/hls/{VILLAGE_A}/live.m3u8", params={"token": token})
    assert resp.status == 200
    assert resp.content_type == "application/vnd.apple.mpegurl"
    lines = (await resp.text()).splitlines()
    assert lines[0] == "#EXTM3U"
    segments = [line for line in lines if line and not line.startswith("#")]
    assert segments
    assert all(s.endswith(f"?token={token}") for s in segments)
    seg = await client.get(f"/hls/{VILLAGE_A}/{segments[0]}")
    assert seg.status == 200
    assert seg.headers["Content-Type"] == "video/mp2t"
    path = tmp_path / "seg.ts"
    path.write_bytes(await seg.read())
    info = json.loads(
        await _run("ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path))
    )
    assert info["streams"][0]["codec_name"] == "aac"
    pcm = await _run("ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000",
                     "-f", "f32le", "-")  # fmt: skip
    import numpy as np

    assert loud_seconds(np.frombuffer(pcm, dtype="<f4")) >= 1.0
    # a player reads the playlist URL itself, segments and all
    url = str(client.make_url(f"/hls/{VILLAGE_A}/live.m3u8").with_query(token=token))
    heard = await Player(url, 3.0).start()
    assert loud_seconds(await heard.samples()) >= 2.5
    # no token, no segments
    assert (await client.get(f"/hls/{VILLAGE_A}/live.m3u8")).status == 401
    assert (await client.get(f"/hls/{VILLAGE_A}/{segments[0].split('?')[0]}")).status == 401
    assert client.app[HUB].cancel("t")
    assert reports[-1].listener_ids == {listener_id}

"""The reference speaker box against a real server that restarts under it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from devices import store
from streaming.items import PlayItem
from streaming.speaker import WavSink, backoff_s, play
from tests.audio import loud_seconds, rms_dbfs
from tests.streaming.fixtures import VILLAGE_A, wait_for
from web.app import create_app
from web.keys import SESSIONMAKER
from web.settings import Settings
from web.streams import HUB


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    lows = [backoff_s(n, 0.5, 30.0, rand=lambda: 0.0) for n in range(10)]
    highs = [backoff_s(n, 0.5, 30.0, rand=lambda: 1.0) for n in range(10)]
    assert lows[:4] == [0.25, 0.5, 1.0, 2.0]
    assert highs[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(highs) == 30.0
    assert all(lo < hi for lo, hi in zip(lows, highs, strict=True))


async def _start(settings: Settings, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.mark.ffmpeg
@pytest.mark.slow
async def test_speaker_reconnects_after_server_restart_and_plays(
    tmp_path: Path, unused_tcp_port: int, short_tone_mp3: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", log_format="text")
    runner = await _start(settings, unused_tcp_port)
    async with runner.app[SESSIONMAKER]() as session:
        await store.import_regions_file(session, store.DEMO_REGIONS)
        device = await store.create_device(session, VILLAGE_A, "box")
        await session.commit()
    stop = asyncio.Event()
    titles: list[str] = []
    connects: list[int] = []
    out = tmp_path / "heard.wav"
    sink = WavSink(out)
    box = asyncio.ensure_future(
        play(
            f"http://127.0.0.1:{unused_tcp_port}",
            device.token,
            sink,
            stop=stop,
            on_title=titles.append,
            on_connect=lambda: connects.append(1),
            base_delay_s=0.2,
            max_delay_s=1.0,
        )
    )
    try:
        await wait_for(lambda: runner.app[HUB].connected_devices(VILLAGE_A) == {device.id})
        await runner.cleanup()
        await asyncio.sleep(1.0)  # the box retries against a closed port meanwhile
        runner = await _start(settings, unused_tcp_port)
        hub = runner.app[HUB]
        await wait_for(lambda: hub.connected_devices(VILLAGE_A) == {device.id}, timeout=10)
        assert len(connects) == 2
        finished = asyncio.Event()
        hub.add_report_listener(lambda r: finished.set() if r.event == "finished" else None)
        hub.offer(PlayItem("t", VILLAGE_A, "단수 안내", (short_tone_mp3,)))
        await asyncio.wait_for(finished.wait(), 15)
        await asyncio.sleep(1.5)  # what was sent ahead, and a metadata block after the item
    finally:
        stop.set()
        await asyncio.wait_for(box, 10)
        await sink.close()
        await runner.cleanup()
    assert "단수 안내" in titles
    samples = np.frombuffer(_pcm(out), dtype="<i2").astype(np.float32) / 32768
    assert abs(loud_seconds(samples, rate=48000) - 3.0) <= 0.5
    assert rms_dbfs(samples) > -50


def _pcm(wav: Path) -> bytes:
    import wave

    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 48000)
        return w.readframes(w.getnframes())

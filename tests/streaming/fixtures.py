"""Fixtures and helpers of the channel tests: boxes, listeners, audio, ffmpeg players."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices import store
from streaming.items import ItemReport
from tests.audio import channel_mp3, speech_wav, tone_wav
from web.keys import SESSIONMAKER
from web.streams import HUB

VILLAGE_A = "goseong-eup-seongnae-ri"
VILLAGE_B = "goseong-eup-seooe-ri"


@pytest.fixture(scope="session")
def speech_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Korean announcement (espeak-ng) in the channel format."""
    d = tmp_path_factory.mktemp("speech")
    return channel_mp3(speech_wav(d / "speech.wav"), d / "speech.mp3")


@pytest.fixture(scope="session")
def long_tone_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30 s 440 Hz tone (a long routine item) in the channel format."""
    d = tmp_path_factory.mktemp("tone")
    return channel_mp3(tone_wav(d / "tone.wav", 30.0, 440.0), d / "tone.mp3")


@pytest.fixture(scope="session")
def short_tone_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s 1 kHz tone in the channel format."""
    d = tmp_path_factory.mktemp("tone3")
    return channel_mp3(tone_wav(d / "tone3.wav", 3.0, 1000.0), d / "tone3.mp3")


@pytest.fixture
def make_device(client: Any) -> Callable[..., Any]:
    """``await make_device(village)`` → (device id, token) of a new speaker box."""

    async def make(village: str = VILLAGE_A, name: str = "box") -> tuple[int, str]:
        async with client.app[SESSIONMAKER]() as session:
            issued = await store.create_device(session, village, name)
            await session.commit()
        return issued.id, issued.token

    return make


@pytest.fixture
def make_listener(client: Any) -> Callable[..., Any]:
    """``await make_listener(village)`` → (listener id, token) of an active resident."""

    async def make(village: str = VILLAGE_A) -> tuple[int, str]:
        async with client.app[SESSIONMAKER]() as session:
            listener, token = await store.create_listener(session, village, "이웃", True)
            await session.commit()
        return listener.id, token

    return make


@pytest.fixture
def reports(client: Any) -> list[ItemReport]:
    """Every item report of the test server's hub, in order."""
    got: list[ItemReport] = []
    client.app[HUB].add_report_listener(got.append)
    return got


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Poll until ``predicate()`` holds (fail after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Player:
    """ffmpeg reading a stream URL the way a player does, decoding to 16 kHz mono float PCM."""

    def __init__(self, url: str, seconds: float, *input_args: str) -> None:
        self.url = url
        self.seconds = seconds
        self.input_args = input_args
        self.proc: asyncio.subprocess.Process | None = None
        self._out: asyncio.Task[tuple[bytes, bytes]] | None = None

    async def start(self) -> Player:
        """Start playing."""
        self.proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-v", "error", *self.input_args, "-i", self.url,
            "-t", str(self.seconds), "-ac", "1", "-ar", "16000", "-f", "f32le", "-",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._out = asyncio.ensure_future(self.proc.communicate())
        return self

    async def samples(self, timeout: float = 60.0) -> np.ndarray:  # noqa: ASYNC109
        """Wait for the end and return what was heard."""
        assert self._out is not None
        assert self.proc is not None
        try:
            out, err = await asyncio.wait_for(self._out, timeout)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode == 0, err.decode(errors="replace")[-2000:]
        return np.frombuffer(out, dtype="<f4")

    async def stop(self) -> None:
        """Kill the player if it still runs."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

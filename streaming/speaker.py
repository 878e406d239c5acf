"""The reference smart speaker box: pulls its village stream, reconnects, writes what it hears.

``villagecast speaker --server URL --token T [--out FILE] [--format wav|mp3]``. The box asks for
``/live/me.mp3`` (the server picks the token's village), with ICY metadata to log what plays.
Reconnects use exponential backoff with jitter; a WAV output is decoded by one ffmpeg process for
the whole run, so reconnects do not split the file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from recordings.channel_format import SAMPLE_RATE_HZ

from .icy import IcyReader
from .transcode import FfmpegPipe

__all__ = ["backoff_s", "play", "run"]

log = logging.getLogger("villagecast.speaker")

READ_TIMEOUT_S = (
    10.0  # the server sends silence between items, so silence on the wire means trouble
)


def backoff_s(
    attempt: int,
    base_s: float = 0.5,
    cap_s: float = 30.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before reconnect ``attempt`` (0-based): exponential, capped, half of it jittered."""
    ceiling = min(cap_s, base_s * 2**attempt)
    return ceiling / 2 + rand() * ceiling / 2


class Sink(Protocol):
    """Where the box's audio goes."""

    async def write(self, mp3: bytes) -> None:
        """Take MP3 bytes."""
        ...

    async def close(self) -> None:
        """Flush and close."""
        ...


class NullSink:
    """Hears and forgets (logging only)."""

    async def write(self, mp3: bytes) -> None:
        """Drop the bytes."""

    async def close(self) -> None:
        """Nothing to close."""


class Mp3Sink:
    """Appends the raw MP3 stream to a file."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("ab")

    async def write(self, mp3: bytes) -> None:
        """Append (small writes to a local file)."""
        self._file.write(mp3)

    async def close(self) -> None:
        """Close the file."""
        self._file.close()


class WavSink:
    """Decodes the stream to a WAV file with one ffmpeg process for the whole run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._decoder = FfmpegPipe(
            ["-ac", "1", "-ar", str(SAMPLE_RATE_HZ), "-y", "-f", "wav", str(path)],
            input_format="mp3", allowed=("mp3",), input_options=(), name="speaker-wav",
        )  # fmt: skip
        self._started = False

    async def write(self, mp3: bytes) -> None:
        """Feed the decoder."""
        if not self._started:
            self._started = True
            await self._decoder.start()
        await self._decoder.write(mp3)

    async def close(self) -> None:
        """End the input and wait for ffmpeg to finish the file."""
        await self._decoder.close(timeout_s=10)


def make_sink(out: Path | None, fmt: str | None) -> Sink:
    """The sink for ``--out``/``--format`` (format defaults from the file suffix)."""
    if out is None:
        return NullSink()
    fmt = fmt or ("wav" if out.suffix.lower() == ".wav" else "mp3")
    return WavSink(out) if fmt == "wav" else Mp3Sink(out)


async def play(
    server: str,
    token: str,
    sink: Sink,
    *,
    stop: asyncio.Event,
    on_title: Callable[[str], None] | None = None,
    on_connect: Callable[[], None] | None = None,
    base_delay_s: float = 0.5,
    max_delay_s: float = 30.0,
) -> None:
    """Pull the box's village stream into ``sink`` until ``stop`` is set, reconnecting as needed."""
    url = server.rstrip("/") + "/live/me.mp3"
    headers = {"Authorization": f"Bearer {token}", "Icy-MetaData": "1"}
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=READ_TIMEOUT_S)
    attempt = 0
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            try:
                async with session.get(url, headers=headers) as resp:
                    if resp.status != 200:
                        log.warning("server answered %s: %s", resp.status, await resp.text())
                    else:
                        attempt = 0
                        log.info("connected to %s", url)
                        if on_connect is not None:
                            on_connect()
                        await _receive(resp, sink, stop, on_title)
                        log.info("stream ended")
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                log.info("connection failed: %s", exc or type(exc).__name__)
            if stop.is_set():
                break
            delay = backoff_s(attempt, base_delay_s, max_delay_s)
            attempt += 1
            log.info("reconnecting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


async def _receive(
    resp: aiohttp.ClientResponse,
    sink: Sink,
    stop: asyncio.Event,
    on_title: Callable[[str], None] | None,
) -> None:
    metaint = int(resp.headers.get("icy-metaint", "0") or 0)
    reader = IcyReader(metaint) if metaint else None
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            chunk_task = asyncio.ensure_future(resp.content.readany())
            await asyncio.wait({chunk_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stopped.done():
                chunk_task.cancel()
                return
            chunk = chunk_task.result()
            if not chunk:
                return
            if reader is None:
                await sink.write(chunk)
                continue
            audio, metas = reader.feed(chunk)
            if audio:
                await sink.write(audio)
            for meta in metas:
                title = meta.get("StreamTitle", "")
                log.info("playing: %s", title or "(silence)")
                if on_title is not None:
                    on_title(title)
    finally:
        stopped.cancel()


def run(args: argparse.Namespace, settings: Any) -> int:
    """The ``villagecast speaker`` command."""
    if not args.server or not args.token:
        print("villagecast speaker: --server and --token are required")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return asyncio.run(_main(args.server, args.token, args.out, args.format))


async def _main(server: str, token: str, out: Path | None, fmt: str | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sink = make_sink(out, fmt)
    try:
        await play(server, token, sink, stop=stop)
    finally:
        await sink.close()
    return 0

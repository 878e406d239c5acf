"""A real ``villagecast serve`` process and a real ffmpeg stream client, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

VILLAGECAST = str(Path(sys.executable).with_name("villagecast"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """``villagecast serve --demo`` on a data directory; restartable on the same data."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    output: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start and wait until /healthz answers."""
        env = {
            **os.environ,
            "VILLAGECAST_LOG_FORMAT": "text",
            "VILLAGECAST_LOG_LEVEL": "WARNING",
            "VILLAGECAST_QUIET_HOURS": "off",
            **self.env,
        }
        self.proc = await asyncio.create_subprocess_exec(
            VILLAGECAST, "serve", "--demo", "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.proc.returncode is None, "server exited:\n" + "\n".join(self.output)
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                assert time.monotonic() < deadline, "server did not start:\n" + "\n".join(
                    self.output
                )
                await asyncio.sleep(0.1)

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace").rstrip())

    async def kill(self) -> None:
        """kill -9: a crash."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)

    async def stop(self) -> int:
        """SIGTERM and wait (kill after 20 s)."""
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode or 0 if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            rc = await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        return rc

    def demo_password(self, username: str = "admin") -> str:
        for line in self.output:
            m = re.match(rf"demo user\s+{re.escape(username)}\s+.*password=(\S+)", line)
            if m:
                return m[1]
        raise AssertionError("no demo password printed:\n" + "\n".join(self.output))

    def demo_speaker(self, village: str) -> tuple[int, str]:
        for line in self.output:
            m = re.match(
                rf"demo speaker id=(\d+)\s+village={re.escape(village)}\s+token=(\S+)", line
            )
            if m:
                return int(m[1]), m[2]
        raise AssertionError("no demo speaker printed:\n" + "\n".join(self.output))


async def api_token(url: str, username: str, password: str) -> dict[str, str]:
    """Log in and create a personal API token: Bearer headers."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{url}/api/v1/session", json={"username": username, "password": password}
        ) as resp:
            assert resp.status == 200, await resp.text()
            csrf = (await resp.json())["csrf_token"]
        async with http.post(
            f"{url}/api/v1/tokens", json={"name": "test"}, headers={"X-CSRF-Token": csrf}
        ) as resp:
            assert resp.status in (200, 201), await resp.text()
            token = (await resp.json())["token"]
    return {"Authorization": f"Bearer {token}"}


async def tts_announcement(url: str, headers: dict[str, str], title: str, text: str) -> int:
    """A text-to-speech announcement, waited for until ready."""
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(
            f"{url}/api/v1/announcements", json={"title": title, "text": text}
        ) as resp:
            assert resp.status == 202, await resp.text()
            ann = int((await resp.json())["id"])
        deadline = time.monotonic() + 60
        while True:
            async with http.get(f"{url}/api/v1/announcements/{ann}") as resp:
                status = (await resp.json())["status"]
            if status == "ready":
                return ann
            assert status == "processing", status
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)


RATE = 8000
WINDOW = RATE // 50  # 20 ms


class StreamClient:
    """ffmpeg pulling a village stream, decoding to PCM; notes when loud audio arrives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.proc: asyncio.subprocess.Process | None = None
        self.samples = bytearray()
        self.loud_at: list[float] = []  # wall time (time.time()) of each loud 20 ms window
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StreamClient:
        self.proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-v", "error", "-fflags", "nobuffer", "-probesize", "32",
            "-analyzeduration", "0", "-i", self.url, "-ac", "1", "-ar", str(RATE),
            "-f", "s16le", "-flush_packets", "1", "-",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        pending = b""
        while True:
            chunk = await self.proc.stdout.read(4096)
            if not chunk:
                return
            now = time.time()
            pending += chunk
            usable = len(pending) // (WINDOW * 2) * WINDOW * 2
            block, pending = pending[:usable], pending[usable:]
            if not block:
                continue
            self.samples.extend(block)
            pcm = np.frombuffer(block, dtype="<i2").astype(np.float64) / 32768
            for window in pcm.reshape(-1, WINDOW):
                if np.sqrt(np.mean(window**2)) > 10 ** (-35 / 20):
                    self.loud_at.append(now)

    @property
    def loud_seconds(self) -> float:
        return len(self.loud_at) * WINDOW / RATE

    async def __aexit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

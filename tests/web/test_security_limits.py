"""#11.5 and #16.6: streams are capped below the descriptor limit, the API answers at the cap,
slowloris is cut, accept errors do not flood the log, and ``serve`` listens with a 4,096 backlog.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import resource
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devices import store
from web.keys import SESSIONMAKER
from web.limits import STREAM_LIMITS
from web.settings import Settings

from .foundation_helpers import VILLAGE, app_client, clean_env, free_port, stop, venv_bin

log = logging.getLogger(__name__)


async def _listener(client: Any) -> str:
    async with client.app[SESSIONMAKER]() as session:
        _, token = await store.create_listener(session, VILLAGE, "주민", True)
        await session.commit()
    return token


async def test_streams_are_capped_per_token_and_in_all_and_the_api_still_answers(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings.replace(max_streams=3, streams_per_token=2))
    first, second = await _listener(client), await _listener(client)
    url = f"/live/{VILLAGE}.mp3?token="
    held = [await client.get(url + first), await client.get(url + first)]
    assert [r.status for r in held] == [200, 200]
    refused = await client.get(url + first)
    assert refused.status == 503
    assert refused.content_type == "application/problem+json"
    assert int(refused.headers["Retry-After"]) > 0
    assert "token" in (await refused.json())["detail"]
    held.append(await client.get(url + second))
    assert held[-1].status == 200
    full = await client.get(f"/live/{VILLAGE}.ogg?token={second}")
    assert full.status == 503
    assert "at most 3" in (await full.json())["detail"]
    # the API and the console still answer while streams are at their cap
    assert (await client.get("/api/v1/regions")).status == 200
    assert (await client.get("/")).status == 200
    held.pop(0).close()
    for _ in range(50):
        if client.app[STREAM_LIMITS].open < 3:
            break
        await asyncio.sleep(0.1)
    again = await client.get(url + second)
    assert again.status == 200
    again.close()
    for resp in held:
        resp.close()


async def test_streams_are_capped_per_address(aiohttp_client: Any, settings: Settings) -> None:
    client = await app_client(aiohttp_client, settings.replace(streams_per_address=2))
    tokens = [await _listener(client) for _ in range(3)]
    held = [await client.get(f"/live/{VILLAGE}.mp3?token={t}") for t in tokens]
    assert [r.status for r in held] == [200, 200, 503]
    assert "address" in (await held[2].json())["detail"]
    for resp in held:
        resp.close()


def _post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _get_status(port: int, path: str, timeout_s: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _open_stream(port: int, token: str) -> tuple[socket.socket, int]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /live/{VILLAGE}.mp3?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = sock.recv(200).decode("latin-1")
    match = re.match(r"HTTP/1\.1 (\d+)", head)
    return sock, int(match[1]) if match else 0


def _limit_descriptors(n: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return apply


@pytest.mark.slow
def test_serve_at_its_descriptor_limit(tmp_path: Path) -> None:
    """A real ``villagecast serve`` at a 400-descriptor limit (systemd's default is 1,024)."""
    port = free_port()
    env = clean_env(
        VILLAGECAST_FD_RESERVE="200",
        VILLAGECAST_STREAMS_PER_TOKEN="0",
        VILLAGECAST_STREAMS_PER_ADDRESS="0",
        VILLAGECAST_HEADER_TIMEOUT_S="2",
        VILLAGECAST_LOG_FORMAT="text",
    )
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [venv_bin("villagecast"), "serve", "--demo", "--port", str(port),
             "--data-dir", str(tmp_path / "data")],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
            preexec_fn=_limit_descriptors(400),
        )  # fmt: skip
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 120
        while _try_status(port) != 200:
            assert proc.poll() is None, stderr_path.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.3)
        # the listen backlog (Send-Q of a listening socket)
        ss = subprocess.run(
            ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
        )
        assert ss.stdout.split()[2] == str(min(4096, _somaxconn())), ss.stdout
        token = _post(
            port, "/api/v1/listeners", {"village": VILLAGE, "nickname": "a", "consent": True}
        )["token"]

        # 1. 300 stream listeners against a cap of 400 - 200 = 200
        statuses = []
        for _ in range(300):
            sock, status = _open_stream(port, token)
            statuses.append(status)
            (sockets.append(sock) if status == 200 else sock.close())
        held = statuses.count(200)
        assert 150 <= held <= 200, statuses
        assert set(statuses) == {200, 503}
        started = time.monotonic()
        assert _get_status(port, "/api/v1/regions") == 200  # the reserve keeps the API answering
        assert _get_status(port, "/") == 200
        assert time.monotonic() - started < 5

        # 2. slowloris: 50 connections that never finish their headers are cut
        slow = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(s)
        time.sleep(4.5)  # header_timeout_s = 2
        cut = 0
        for s in slow:
            s.settimeout(1)
            try:
                cut += s.recv(100) == b""
            except (ConnectionResetError, TimeoutError):
                cut += 0
            s.close()
        assert cut == 50

        # 3. descriptors exhausted by idle connections: accept() fails, the log does not flood
        before = len(stderr_path.read_text().splitlines())
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(400)]
        time.sleep(5)
        for s in idle:
            s.close()
        grown = len(stderr_path.read_text().splitlines()) - before
        print(f"\nlog lines while descriptors ran out: {grown}; streams held {held}")
        assert grown < 200, stderr_path.read_text()[-3000:]
        time.sleep(3)
        assert _get_status(port, "/healthz") == 200  # the idle ones were cut; service is back
    finally:
        for s in sockets:
            s.close()
        stop(proc)
    text = stderr_path.read_text()
    assert re.search(r"descriptor limit: 400 \(was 400, hard limit 400\)", text), text[-2000:]


def _try_status(port: int) -> int:
    try:
        return _get_status(port, "/healthz", 2)
    except OSError:
        return 0


def _somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())

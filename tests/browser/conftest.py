"""Browser tests: a real ``villagecast serve --demo`` subprocess and Debian's headless Chromium.

One server and one browser per test module (the machine is small); a fresh browser context per
test. The demo prints its users' passwords and speakers' tokens once: the fixture reads them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
VILLAGE = "goseong-eup-seongnae-ri"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def villagecast() -> list[str]:
    """The villagecast command of this checkout's venv."""
    exe = Path(sys.executable).with_name("villagecast")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "web.cli"]


@dataclass
class Server:
    """A running ``villagecast serve --demo`` and what the demo printed."""

    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    passwords: dict[str, str] = field(default_factory=dict)
    speakers: dict[str, tuple[int, str]] = field(default_factory=dict)  # village → (id, token)
    log: Path | None = None

    def api(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        """Call the server's API (JSON) from the test, with an optional bearer token."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


def start_server(data_dir: Path, env_extra: dict[str, str] | None = None) -> Server:
    """Start a demo server on a free loopback port and wait until it answers."""
    port = _free_port()
    log = data_dir.parent / f"server-{port}.log"
    env = {**os.environ, "VILLAGECAST_LOG_FORMAT": "text", "VILLAGECAST_LOG_LEVEL": "WARNING"}
    env.update(env_extra or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*villagecast(), "serve", "--port", str(port), "--data-dir", str(data_dir), "--demo"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
    server = Server(url=f"http://127.0.0.1:{port}", data_dir=data_dir, proc=proc, log=log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.3)
    else:
        stop_server(server)
        raise RuntimeError("server did not start in 90 s")
    text = log.read_text(errors="replace")
    for user, password in re.findall(r"demo user\s+(\S+)\s+role=\S+\s+password=(\S+)", text):
        server.passwords[user] = password
    for dev_id, village, token in re.findall(
        r"demo speaker id=(\d+)\s+village=(\S+)\s+token=(\S+)", text
    ):
        server.speakers[village] = (int(dev_id), token)
    return server


def stop_server(server: Server) -> None:
    """Stop the server and wait for it."""
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real villagecast server with the Goseong demo, for this module."""
    srv = start_server(tmp_path_factory.mktemp("server") / "data")
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright, one per module."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh browser context (cookies, storage) at desktop size, in Korean."""
    ctx = browser.new_context(
        viewport=DESKTOP,
        locale="ko-KR",
        timezone_id="Asia/Seoul",
        base_url=server.url,
        service_workers="block",
    )
    ctx.set_default_timeout(40_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    """A page that fails the test on uncaught script errors."""
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    assert not errors, f"uncaught errors in the page: {errors}"


def login(page: Any, username: str, password: str) -> None:
    """Log in through the login form and wait for the dashboard."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector(".stats", timeout=30_000)


def register(page: Any, nickname: str = "박영수", village: str = VILLAGE) -> None:
    """Register as a resident of 성내리 on /listen."""
    page.goto("/listen")
    page.wait_for_selector("#district option[value=goseong-eup]", state="attached")
    page.select_option("#district", "goseong-eup")
    page.select_option("#village", village)
    page.fill("#nickname", nickname)
    page.check("#consent")
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#player:not([hidden])")


def screenshot(page: Any, name: str, sizes: tuple[str, ...] = ("desktop", "phone")) -> None:
    """Save docs/screenshots/<name>-<size>.png at desktop (1280×800) and phone (390×844) sizes."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for size in sizes:
        page.set_viewport_size(DESKTOP if size == "desktop" else PHONE)
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"))
    page.set_viewport_size(before)


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core in the page; the serious and critical violations as readable lines."""
    # evaluated over the DevTools protocol: the pages' CSP forbids inline scripts (add_script_tag)
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    lines = []
    for v in result["violations"]:
        if v.get("impact") in impacts:
            targets = [" ".join(map(str, n["target"])) for n in v["nodes"][:5]]
            lines.append(f"{v['impact']}: {v['id']} — {v['help']} @ {targets}")
    return lines

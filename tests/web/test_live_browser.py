"""The console's "go live" flow in Debian's headless Chromium, with a fake microphone from a WAV.

A real ``villagecast serve --demo`` subprocess (quiet hours off: the test runs at any hour in
Korea), ffmpeg as the village's speaker box, and Chromium speaking Korean speech into the
console's 생방송 view. Afterwards the session is a ``ready`` live announcement in the archive.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.audio import decode_pcm, encode, loud_seconds, speech_wav
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Server, login, start_server, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.ffmpeg, pytest.mark.slow]


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A demo server without quiet hours."""
    monkeypatch.setenv("VILLAGECAST_QUIET_HOURS", "off")
    srv = start_server(tmp_path / "data")
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
def mic_wav(tmp_path: Path) -> Path:
    """Korean speech at 48 kHz for Chromium's fake microphone (it loops the file)."""
    speech = speech_wav(
        tmp_path / "speech.wav",
        "수도관이 파열되어 오늘 오후 단수됩니다. 주민 여러분께 알려 드립니다.",
    )
    return encode(speech, tmp_path / "speech48k.wav", "-ar", "48000", "-ac", "1")


def test_console_go_live_reaches_the_village_and_the_archive(
    live_server: Server, mic_wav: Path, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    village, (_, token) = next(iter(sorted(live_server.speakers.items())))
    heard = tmp_path / "heard.wav"
    player = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i",
         f"{live_server.url}/live/{village}.mp3?token={token}", "-t", "40",
         "-ac", "1", "-ar", "16000", str(heard)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic_wav}"],
                timeout=60_000,
            )
            try:
                ctx = browser.new_context(
                    base_url=live_server.url, locale="ko-KR", service_workers="block"
                )
                ctx.set_default_timeout(30_000)
                page = ctx.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                login(page, "admin", live_server.passwords["admin"])
                page.goto("/#live")
                page.wait_for_selector(".picker")
                page.check(f"#live-v-{village}")
                page.click("#live-start")
                page.wait_for_selector("#live-status .onair")
                page.wait_for_timeout(7000)  # speak for a while
                page.click("#live-stop")
                page.wait_for_selector("#live-start:not([hidden])")
                archived = _wait_for_live_announcement(page, 90)
                assert not errors, errors
            finally:
                browser.close()
        time.sleep(1.0)
    finally:
        player.terminate()
        try:
            player.wait(timeout=10)
        except subprocess.TimeoutExpired:
            player.kill()
            player.wait()
    assert archived["status"] == "ready", archived
    assert archived["duration_s"] >= 4
    assert loud_seconds(decode_pcm(heard)) >= 3.0, "the village's speaker heard too little"


def _wait_for_live_announcement(page: Any, within_s: float) -> dict[str, Any]:
    """Poll the archive (with the browser's session) until the live recording is processed."""
    deadline = time.monotonic() + within_s
    latest: dict[str, Any] = {}
    while time.monotonic() < deadline:
        items = page.evaluate(
            "async () => (await (await fetch('/api/v1/announcements')).json()).items"
        )
        live = [a for a in items if a["source"] == "live" and a["status"] != "failed"]
        if live:
            latest = live[0]
            if latest["status"] != "processing":
                return latest
        page.wait_for_timeout(500)
    raise AssertionError(f"no processed live announcement: {latest}")

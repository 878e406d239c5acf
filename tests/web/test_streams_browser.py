"""Chromium (Debian's, headless, through Playwright) plays every mount of a channel natively."""

# ruff: noqa: F811  (the fixtures are imported from tests/streaming/fixtures.py)

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streaming.items import PlayItem
from tests.streaming.fixtures import (  # noqa: F401 (fixtures)
    VILLAGE_A,
    long_tone_mp3,
    make_listener,
)
from web.streams import HUB

pytestmark = [pytest.mark.browser, pytest.mark.ffmpeg, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

PLAY = """async (src) => {
  const audio = new Audio();
  audio.muted = true;
  audio.src = src;
  await audio.play();
  const t0 = performance.now();
  while (audio.currentTime < 2.0) {
    if (audio.error) return 'error ' + audio.error.code;
    if (performance.now() - t0 > 20000) return 'stuck at ' + audio.currentTime;
    await new Promise(r => setTimeout(r, 100));
  }
  return 'ok';
}"""


@pytest.mark.parametrize("mount", ["live/{v}.mp3", "live/{v}.ogg", "hls/{v}/live.m3u8"])
async def test_chromium_plays_the_mount(
    client: Any, make_listener: Callable[..., Any], long_tone_mp3: Path, mount: str
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    if not HAVE_CHROMIUM:
        pytest.skip("Debian chromium is not installed")
    _, token = await make_listener(VILLAGE_A)
    client.app[HUB].offer(PlayItem("t", VILLAGE_A, "tone", (long_tone_mp3,)))
    src = str(client.make_url("/" + mount.format(v=VILLAGE_A)).with_query(token=token))
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await page.goto(str(client.make_url("/healthz")))
            assert await page.evaluate(PLAY, src) == "ok"
        finally:
            await browser.close()

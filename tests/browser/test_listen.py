"""The resident page in a real browser: register in one step, listen live, replay, errors."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PHONE, Server, axe_violations, register, screenshot

pytestmark = pytest.mark.browser

VILLAGE = "goseong-eup-seongnae-ri"


def test_registration_errors_are_explained_in_korean(page: Any) -> None:
    page.set_viewport_size(PHONE)
    page.goto("/listen")
    page.wait_for_selector("#district option[value=goseong-eup]", state="attached")
    screenshot(page, "listen-register")
    page.click("#register-form button[type=submit]")
    assert "마을을 고르세요" in page.inner_text("#register-error")
    page.select_option("#district", "goseong-eup")
    page.select_option("#village", VILLAGE)
    page.fill("#nickname", "김")
    page.click("#register-form button[type=submit]")
    assert "동의" in page.inner_text("#register-error")
    assert not axe_violations(page)


def test_resident_registers_listens_and_the_audio_plays(page: Any, server: Server) -> None:
    page.set_viewport_size(PHONE)
    register(page)
    stored = page.evaluate("JSON.parse(localStorage.getItem('vc_listener'))")
    assert stored["village"] == VILLAGE
    assert stored["token"]
    assert "성내리" in page.inner_text("#where")
    page.click("#listen-btn")
    # The audio element really plays: its time advances (HLS, or the MP3 stream as fallback).
    page.wait_for_function(
        "() => document.querySelector('#live-audio').currentTime > 1.5", timeout=45_000, polling=250
    )
    assert page.get_attribute("#listen-btn", "aria-pressed") == "true"
    screenshot(page, "listen-playing")
    assert not axe_violations(page)
    page.click("#listen-btn")
    assert page.get_attribute("#listen-btn", "aria-pressed") == "false"
    # The registration survives a reload (token in localStorage).
    page.reload()
    page.wait_for_selector("#player:not([hidden])")


def test_lost_connection_is_shown(page: Any, context: Any) -> None:
    register(page, "이순자")
    context.set_offline(True)
    try:
        page.evaluate("document.querySelector('#listen-btn').click()")
        page.wait_for_selector("#listen-state.error, #conn:not([hidden])", timeout=30_000)
    finally:
        context.set_offline(False)


def test_hls_plays_too(page: Any) -> None:
    register(page, "최씨")
    page.goto("/listen?via=hls")
    page.wait_for_selector("#player:not([hidden])")
    page.click("#listen-btn")
    page.wait_for_function(
        "() => document.querySelector('#live-audio').currentTime > 1.5", timeout=60_000, polling=250
    )
    assert page.get_attribute("#live-audio", "data-via") == "hls"


def test_the_page_is_installable_and_opens_offline(browser: Any, server: Server) -> None:
    ctx = browser.new_context(viewport=PHONE, locale="ko-KR", base_url=server.url)
    try:
        page = ctx.new_page()
        page.goto("/listen")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        manifest = page.evaluate(
            "async () => (await fetch(document.querySelector('link[rel=manifest]').href)).json()"
        )
        assert manifest["start_url"] == "/listen"
        assert any(icon["sizes"] == "512x512" for icon in manifest["icons"])
        page.wait_for_function(
            "async () => (await caches.keys()).length > 0 && "
            "(await (await caches.open((await caches.keys())[0])).keys()).length >= 10",
            timeout=30_000,
        )
        ctx.set_offline(True)
        page.reload()
        page.wait_for_selector("h1")
        assert "우리 마을 방송" in page.inner_text("h1")
    finally:
        ctx.close()

"""스마트 이장넷 end to end in Chromium: a district officer sends a notice with a PDF to three
villages; each village head opens it on a phone (inbox first, unread badge); two confirm, one
replies with a photo, one airs it and her village's speaker hears it; the receipts show it."""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.audio import decode_pcm, loud_seconds
from tests.web.notice_files import pdf_bytes, png_bytes

from . import test_broadcast_flow
from .conftest import PHONE, Server, axe_violations, login, screenshot

speaker = test_broadcast_flow.speaker  # the demo speaker box of 성내리, connected
pytestmark = [pytest.mark.browser, pytest.mark.ffmpeg, pytest.mark.slow]

SEONGNAE = "goseong-eup-seongnae-ri"  # the demo village head; the demo speaker is here
SEOOE = "goseong-eup-seooe-ri"
SUNAM = "goseong-eup-sunam-ri"
HEAD_PASSWORD = "correct horse battery"
SAY = "태풍에 대비해 배수로를 점검합시다. 마을회관 앞 배수로를 꼭 확인해 주세요."


def admin_token(server: Server) -> str:
    """An API token of the demo admin (cookie login, then POST /api/v1/tokens)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def call(path: str, body: Any, csrf: str = "") -> Any:
        req = urllib.request.Request(
            server.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
        )  # fmt: skip
        with opener.open(req, timeout=30) as resp:
            return json.loads(resp.read())

    login_body = call(
        "/api/v1/session", {"username": "admin", "password": server.passwords["admin"]}
    )
    return str(call("/api/v1/tokens", {"name": "test"}, login_body["csrf_token"])["token"])


@pytest.fixture(scope="module")
def heads(server: Server) -> dict[str, str]:
    """Village heads of 성내리 (the demo's), 성외리 and 수남리: username → password."""
    token = admin_token(server)
    out = {"seongnae": server.passwords["seongnae"]}
    for username, village in (("seooe", SEOOE), ("sunam", SUNAM)):
        server.api("POST", "/api/v1/users", {"username": username, "password": HEAD_PASSWORD,
                   "role": "village", "region": village}, token=token)  # fmt: skip
        out[username] = HEAD_PASSWORD
    return out


def phone_login(browser: Any, server: Server, username: str, password: str) -> tuple[Any, Any]:
    """A village head logs in on a phone-sized page: the notice inbox is the first page."""
    ctx = browser.new_context(
        viewport=PHONE, locale="ko-KR", timezone_id="Asia/Seoul", base_url=server.url,
        service_workers="block",
    )  # fmt: skip
    ctx.set_default_timeout(40_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#inbox")
    page.errors = errors  # type: ignore[attr-defined]
    return ctx, page


def open_notice(page: Any, title: str) -> None:
    """See the unread badge, open the notice from the inbox."""
    page.wait_for_selector("#notice-badge:not([hidden])")
    assert page.inner_text("#notice-badge") == "1"
    page.click(f"#inbox .notice-item.unread a:has-text('{title}')")
    page.wait_for_selector("#notice-body")
    assert "점검표.pdf" in page.inner_text("#notice-files")
    page.wait_for_selector("#notice-badge[hidden]", state="attached")


def test_officer_sends_heads_confirm_reply_and_air_and_the_receipts_show_it(
    page: Any, browser: Any, server: Server, heads: dict[str, str], speaker: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    pdf = tmp_path / "점검표.pdf"
    pdf.write_bytes(pdf_bytes())
    photo = tmp_path / "drain.png"
    photo.write_bytes(png_bytes(64, 48))
    title = "태풍 대비 마을 점검 요청"
    # The 고성읍 officer writes the notice with a PDF to three villages.
    login(page, "goseong-eup", server.passwords["goseong-eup"])
    page.goto("/#notice-new")
    page.fill("#notice-title", title)
    page.fill("#notice-text", "오늘 18시까지 배수로를 점검하고 확인 버튼을 눌러 주세요.")
    page.set_input_files("#notice-files-input", str(pdf))
    page.check("#notice-ack-required")
    page.fill("#notice-say", SAY)
    for village in (SEONGNAE, SEOOE, SUNAM):
        page.check(f"#notice-v-{village}")
    assert not axe_violations(page)
    page.click("#notice-send")
    page.wait_for_selector("#notice-sent")
    assert "3명" in page.inner_text("#notice-sent")
    screenshot(page, "notice-compose", sizes=("desktop",))
    page.click("#notice-receipts-link")
    page.wait_for_url("**/#notice-receipts/*")
    notice_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#rc-read")
    assert page.inner_text("#rc-read .num") == "0/3"

    # 성외리: opens it, confirms, replies with a photo of the drain.
    ctx, head = phone_login(browser, server, "seooe", heads["seooe"])
    screenshot(head, "notice-inbox", sizes=("phone",))
    assert not axe_violations(head)
    open_notice(head, title)
    head.click("#notice-ack")
    head.wait_for_selector("#ack-done")
    head.fill("#reply-body", "배수로 정비 완료")
    head.set_input_files("#reply-photo", str(photo))
    head.click("#reply-send")
    head.wait_for_selector("#reply-done")
    head.wait_for_selector("#my-replies img")
    assert "배수로 정비 완료" in head.inner_text("#my-replies")
    assert not axe_violations(head)
    assert not head.errors  # type: ignore[attr-defined]
    ctx.close()

    # 수남리: opens it only.
    ctx, head = phone_login(browser, server, "sunam", heads["sunam"])
    open_notice(head, title)
    assert not head.errors  # type: ignore[attr-defined]
    ctx.close()

    # 성내리: opens it, confirms, and airs it to her village (the plan first).
    ctx, head = phone_login(browser, server, "seongnae", heads["seongnae"])
    open_notice(head, title)
    head.click("#notice-ack")
    head.wait_for_selector("#ack-done")
    head.click("#notice-air")
    head.wait_for_selector("#air-send", timeout=90_000)
    assert "성내리" in head.inner_text("#air-plan")
    screenshot(head, "notice-air-plan", sizes=("phone",))
    assert not axe_violations(head)
    head.click("#air-send")
    head.wait_for_selector("#air-done")
    report_href = head.get_attribute("#air-done a", "href")
    broadcast_id = report_href.rsplit("/", 1)[1]
    b = head.request.get(f"/api/v1/broadcasts/{broadcast_id}").json()
    ann = head.request.get(f"/api/v1/announcements/{b['announcement_id']}").json()
    spoken_s = float(ann["duration_s"])
    assert spoken_s > 2
    assert not head.errors  # type: ignore[attr-defined]
    ctx.close()

    # The speaker of 성내리 hears it: the chime and the spoken text.
    deadline = time.monotonic() + 120
    heard_s = 0.0
    while time.monotonic() < deadline:
        if speaker.exists() and speaker.stat().st_size > 16000:
            heard_s = loud_seconds(decode_pcm(speaker), threshold_dbfs=-35)
            if heard_s >= spoken_s * 0.7:
                break
        time.sleep(2)
    assert heard_s >= spoken_s * 0.7, f"the speaker heard {heard_s:.1f} s of {spoken_s:.1f} s"

    # The officer's receipts: 3/3 read, 2 confirmed, 1 reply, 1 aired.
    page.goto(f"/#notice-receipts/{notice_id}")
    page.wait_for_function("document.querySelector('#rc-read .num')?.textContent === '3/3'")
    assert page.inner_text("#rc-acked .num") == "2"
    assert page.inner_text("#rc-replied .num") == "1"
    assert page.inner_text("#rc-aired .num") == "1"
    assert "배수로 정비 완료" in page.inner_text("#rc-replies")
    assert page.locator("#rc-replies img").count() == 1
    assert "100%" in page.inner_text("#rc-districts")
    assert page.locator("#rc-chart").count() == 1
    screenshot(page, "notice-receipts")
    assert not axe_violations(page)
    csv = page.request.get(f"/api/v1/notices/{notice_id}/receipts.csv")
    assert csv.ok
    assert SEONGNAE in csv.text()

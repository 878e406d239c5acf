"""The staff console in a real browser: login, dashboard, compose, devices, archive, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.audio import tone_wav

from .conftest import Server, axe_violations, login, register, screenshot

pytestmark = pytest.mark.browser

VILLAGE = "goseong-eup-seongnae-ri"


def test_wrong_password_is_refused_in_korean(page: Any, server: Server) -> None:
    page.goto("/")
    assert page.url.endswith("/login")  # anonymous visitors are sent to the login page
    page.fill("#username", "admin")
    page.fill("#password", "not the password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "아이디 또는 비밀번호가 틀렸습니다" in page.inner_text("#login-error")
    screenshot(page, "login")
    assert not axe_violations(page)


def test_admin_dashboard_shows_every_district_and_logs_out(page: Any, server: Server) -> None:
    login(page, "admin", server.passwords["admin"])
    assert page.locator("details.district").count() == 14
    # one demo speaker per district, none online
    assert "0 / 14" in page.inner_text("#stat-speakers")
    screenshot(page, "dashboard")
    assert not axe_violations(page)
    page.click("#lang-switch")
    page.wait_for_selector("text=Villages at a glance")
    page.click("#lang-switch")
    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto("/")
    assert page.url.endswith("/login")


def test_village_head_sees_only_their_village(page: Any, server: Server) -> None:
    login(page, "seongnae", server.passwords["seongnae"])
    assert page.locator("details.district").count() == 1
    assert page.locator("tr[data-village]").count() == 1
    page.goto("/#live")
    page.wait_for_selector(".picker")
    villages = page.locator(".picker input.village")
    assert villages.count() == 1
    assert villages.first.get_attribute("value") == VILLAGE
    assert page.locator(".picker .district-all, .picker .county").count() == 0
    screenshot(page, "live", sizes=("phone",))
    assert not axe_violations(page)
    assert page.locator("nav a[data-view=audit]").is_hidden()


def test_admin_uploads_with_progress_and_previews_loudness(
    page: Any, context: Any, server: Server, tmp_path: Path
) -> None:
    wav = tone_wav(tmp_path / "notice.wav", seconds=30.0, freq_hz=523.0, level_dbfs=-30.0)
    login(page, "admin", server.passwords["admin"])
    page.goto("/#compose")
    page.wait_for_selector("#ann-file", state="attached")
    # Record every value the progress bar takes; throttle the upload so that it takes seconds.
    page.evaluate(
        """() => { window.progressValues = [];
        const bar = document.querySelector('#upload-progress');
        new MutationObserver(() => window.progressValues.push(bar.value))
          .observe(bar, {attributes: true, attributeFilter: ['value']}); }"""
    )
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 1_000_000},
    )
    page.fill("#ann-title", "경로잔치 안내")
    page.set_input_files("#ann-file", str(wav))
    page.click("#upload-btn")
    page.wait_for_selector("#ann-ready", timeout=90_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    values = page.evaluate("window.progressValues")
    assert any(0 < v < 100 for v in values), values  # it moved, not just jumped to the end
    assert values[-1] == 100
    loudness = page.inner_text("#ann-loudness")
    assert "LUFS" in loudness
    assert abs(float(loudness.split("LUFS")[0]) + 16) < 1.5  # normalized to −16 LUFS
    assert page.locator("#send-card").is_visible()
    screenshot(page, "compose")
    assert not axe_violations(page)
    # The archive finds it by title and can replay it.
    page.goto("/#archive")
    page.fill("#archive-q", "경로잔치")
    page.press("#archive-q", "Enter")
    page.wait_for_selector("#archive-results audio")
    assert "경로잔치 안내" in page.inner_text("#archive-results")
    assert not axe_violations(page)


def test_refused_upload_is_explained(page: Any, server: Server, tmp_path: Path) -> None:
    photo = tmp_path / "photo.mp3"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + b"JFIF" * 4000)  # a JPEG renamed .mp3
    login(page, "admin", server.passwords["admin"])
    page.goto("/#compose")
    page.fill("#ann-title", "사진")
    page.set_input_files("#ann-file", str(photo))
    page.click("#upload-btn")
    page.wait_for_selector("#ann-status .alert.error", timeout=60_000)
    text = page.inner_text("#ann-status")
    assert any("\uac00" <= ch <= "\ud7a3" for ch in text)  # a Korean message


def test_add_speaker_shows_token_once_with_qr_and_revokes(page: Any, server: Server) -> None:
    login(page, "goseong-eup", server.passwords["goseong-eup"])
    page.goto("/#devices")
    page.wait_for_selector("#dev-form")
    options = page.locator("#dev-village option")
    values = options.evaluate_all("os => os.map(o => o.value)")
    assert len(values) > 1
    assert all(v.startswith("goseong-eup-") for v in values)  # only the district's own villages
    page.select_option("#dev-village", VILLAGE)
    page.fill("#dev-name", "마을회관 옥상")
    page.click("#dev-form button[type=submit]")
    page.wait_for_selector("#dev-qr img")
    token = page.inner_text("#dev-token")
    assert token
    assert f"/live/{VILLAGE}.mp3?token=" in page.inner_text("#dev-url")
    row = page.locator("#devices-table tr", has_text="마을회관 옥상")
    row.wait_for()
    screenshot(page, "devices")
    assert not axe_violations(page)
    page.once("dialog", lambda d: d.accept())
    row.locator("button").click()
    row.wait_for(state="detached")


def test_admin_sees_accounts_and_audit_log(page: Any, server: Server) -> None:
    login(page, "admin", server.passwords["admin"])
    page.goto("/#audit")
    page.wait_for_selector("#audit-table")
    assert "demo.load" in page.inner_text("#audit-table")
    assert "seongnae" in page.inner_text("main")


def api_in_page(page: Any, method: str, path: str, body: Any = None) -> Any:
    """Call the API with the page's session cookie and CSRF token (as the console does)."""
    return page.evaluate(
        """async ([method, path, body]) => {
          const s = await (await fetch('/api/v1/session')).json();
          const r = await fetch(path, {method, headers: {'Content-Type': 'application/json',
            'X-CSRF-Token': s.csrf_token}, body: body === null ? undefined : JSON.stringify(body)});
          return {status: r.status, body: await r.json()};
        }""",
        [method, path, body],
    )


def test_village_head_types_text_and_records_in_the_browser(page: Any, server: Server) -> None:
    login(page, "seongnae", server.passwords["seongnae"])
    page.goto("/#compose")
    page.fill("#ann-title", "경로잔치")
    page.click("#tab-text")
    page.fill("#ann-text", "오늘 오전 열시 마을회관에서 경로잔치가 열립니다.")
    page.click("#tts-btn")
    page.wait_for_selector("#ann-ready", timeout=90_000)
    # Only their own village, already ticked.
    assert page.locator("#send-card input.village").count() == 1
    assert page.is_checked(f"#send-v-{VILLAGE}")
    # Record from the (fake) microphone: the level meter moves, the preview appears, it uploads.
    page.goto("/#archive")
    page.goto("/#compose")
    page.fill("#ann-title", "녹음 안내")
    page.click("#tab-record")
    page.click("#record-start")
    page.wait_for_function("() => document.querySelector('#level').value > 0", timeout=10_000)
    page.wait_for_timeout(2500)
    page.click("#record-stop")
    page.wait_for_selector("#record-preview:not([hidden])")
    page.click("#record-use")
    page.wait_for_selector("#ann-ready", timeout=90_000)


def test_village_head_approves_a_pending_resident(page: Any, browser: Any, server: Server) -> None:
    login(page, "seongnae", server.passwords["seongnae"])
    changed = api_in_page(
        page, "PATCH", f"/api/v1/regions/{VILLAGE}", {"requires_listener_approval": True}
    )
    assert changed["status"] == 200, changed
    phone = browser.new_context(locale="ko-KR", base_url=server.url, service_workers="block")
    resident = phone.new_page()
    register(resident, "정씨")
    resident.wait_for_selector("#pending:not([hidden])")
    assert resident.is_disabled("#listen-btn")
    page.goto("/#residents")
    row = page.locator("#pending-table tr", has_text="정씨")
    row.wait_for()
    assert not axe_violations(page)
    row.locator("button").click()
    row.wait_for(state="detached")
    resident.click("#recheck")
    resident.wait_for_selector("#pending", state="hidden")
    assert resident.is_enabled("#listen-btn")
    phone.close()
    api_in_page(page, "PATCH", f"/api/v1/regions/{VILLAGE}", {"requires_listener_approval": False})


def test_admin_picker_offers_groups_and_filters_villages(page: Any, server: Server) -> None:
    login(page, "admin", server.passwords["admin"])
    group = {"name": "해안 스피커", "region": "48820", "devices": [1, 2]}
    made = api_in_page(page, "POST", "/api/v1/groups", group)
    assert made["status"] == 201, made
    page.goto("/login")  # logged in already: back to the console
    page.wait_for_selector(".stats")
    page.goto("/#live")
    page.wait_for_selector(".picker-groups")
    assert "해안 스피커" in page.inner_text(".picker-groups")
    page.fill(".picker-filter", "하일면")
    assert page.locator("fieldset.picker-district:visible").count() == 1

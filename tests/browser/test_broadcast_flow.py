"""End to end in a real browser: upload, schedule to one village, hear it on a connected
``villagecast speaker``, and read the delivery report; quiet hours are explained before sending."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.audio import speech_wav

from .conftest import (
    PHONE,
    Server,
    axe_violations,
    login,
    register,
    screenshot,
    start_server,
    stop_server,
    villagecast,
)

pytestmark = [pytest.mark.browser, pytest.mark.ffmpeg, pytest.mark.slow]

VILLAGE = "goseong-eup-seongnae-ri"
SEOUL = ZoneInfo("Asia/Seoul")
# Quiet hours that do not hold now but do in four hours, whatever the time the tests run.
QUIET_FROM = datetime.now(SEOUL) + timedelta(hours=3)
QUIET_TO = QUIET_FROM + timedelta(hours=2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A demo server whose quiet hours start three hours from now."""
    quiet = f"{QUIET_FROM:%H:%M}-{QUIET_TO:%H:%M}"
    srv = start_server(
        tmp_path_factory.mktemp("server") / "data", {"VILLAGECAST_QUIET_HOURS": quiet}
    )
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def speaker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo speaker box of 성내리, connected with the reference smart speaker."""
    out = tmp_path_factory.mktemp("speaker") / "heard.wav"
    _, token = server.speakers[VILLAGE]
    log = out.with_suffix(".log").open("wb")
    proc = subprocess.Popen(
        [*villagecast(), "speaker", "--server", server.url, "--token", token, "--out", str(out)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def upload(page: Any, path: Path, title: str) -> None:
    page.goto("/#compose")
    page.fill("#ann-title", title)
    page.set_input_files("#ann-file", str(path))
    page.click("#upload-btn")
    page.wait_for_selector("#ann-ready", timeout=90_000)


def test_admin_schedules_an_upload_and_the_report_counts_the_speaker(
    page: Any, browser: Any, server: Server, speaker: Path, tmp_path: Path
) -> None:
    wav = speech_wav(tmp_path / "notice.wav", "마을회관에서 경로잔치가 열립니다.")
    # A resident of 성내리 has the listening page open and listens live.
    phone = browser.new_context(
        viewport=PHONE, locale="ko-KR", base_url=server.url, service_workers="block"
    )
    phone.set_default_timeout(40_000)
    resident = phone.new_page()
    register(resident, "김순자")
    resident.click("#listen-btn")
    resident.wait_for_function(
        "() => document.querySelector('#live-audio').currentTime > 1", timeout=45_000
    )
    login(page, "admin", server.passwords["admin"])
    # The connected speaker shows online on the dashboard (live updates over the WebSocket).
    page.wait_for_function(
        "() => document.querySelector('#stat-speakers .num').textContent.startsWith('1 /')",
        timeout=60_000,
    )
    # Remember what the resident's page announces when the broadcast starts.
    resident.evaluate(
        """() => { window.announced = [];
        const box = document.querySelector('#now');
        new MutationObserver(() => box.hidden || window.announced.push(box.textContent))
          .observe(box, {attributes: true, childList: true, characterData: true}); }"""
    )
    upload(page, wav, "경로잔치 안내")
    page.check(f"#send-v-{VILLAGE}")
    page.check("input[name=when][value=later]")
    start = datetime.now(SEOUL) + timedelta(seconds=75)
    page.fill("#send-at", start.strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("#send-repeat", "1")
    page.click("#dry-run")
    page.wait_for_selector("#plan .alert")
    assert page.locator("#plan-ok").count() == 1, page.inner_text("#plan")
    assert "성내리" in page.inner_text("#plan")
    screenshot(page, "send-plan", sizes=("desktop",))
    page.click("#send-btn")
    page.wait_for_url("**/#report/*")
    broadcast_id = page.url.rsplit("/", 1)[1]
    # Scheduled: it shows on the schedule (list and week view).
    page.goto("/#schedule")
    page.wait_for_selector(f"#schedule-table tr[data-id='{broadcast_id}']")
    screenshot(page, "schedule")
    assert not axe_violations(page)
    # It plays at its time, then the report counts the connected speaker as reached.
    page.goto(f"/#report/{broadcast_id}")
    page.wait_for_selector("#report-status .st-playing, #report-status .st-done", timeout=90_000)
    page.wait_for_selector("#report-status .st-done", timeout=120_000)
    assert page.inner_text("#rep-reached .num") == "1"
    assert page.inner_text("#rep-missed .num") == "0"
    assert "성내리 스피커 1" in page.inner_text("#speakers-table")
    assert "전달됨" in page.inner_text("#speakers-table")
    screenshot(page, "report")
    assert not axe_violations(page)
    csv = page.request.get(f"/api/v1/broadcasts/{broadcast_id}/report.csv")
    assert csv.ok
    assert "성내리" in csv.text()
    assert page.inner_text("#rep-live .num") == "1"  # the resident heard it live
    assert "김순자" in page.inner_text("#residents-table")
    assert "1 / 1" in page.text_content("svg.chart")  # residents reached over time
    # The resident's page rang and said what played.
    assert any("경로잔치 안내" in text for text in resident.evaluate("window.announced"))
    assert speaker.exists()
    # Afterwards the resident replays it from the recent list.
    resident.click("#listen-btn")  # stop live
    resident.wait_for_selector("#recent audio", timeout=30_000)
    assert "경로잔치 안내" in resident.inner_text("#recent")
    resident.evaluate("document.querySelector('#recent audio').play()")
    resident.wait_for_function(
        "() => document.querySelector('#recent audio').currentTime > 0.5", timeout=30_000
    )
    screenshot(resident, "listen-replay", sizes=("phone",))
    phone.close()


def test_quiet_hours_are_explained_before_sending(
    page: Any, server: Server, tmp_path: Path
) -> None:
    wav = speech_wav(tmp_path / "water.wav", "내일 단수 안내입니다.")
    login(page, "goseong-eup", server.passwords["goseong-eup"])
    upload(page, wav, "단수 안내")
    page.check(f"#send-v-{VILLAGE}")
    page.check("input[name=when][value=later]")
    quiet_time = QUIET_FROM + timedelta(hours=1)
    page.fill("#send-at", quiet_time.strftime("%Y-%m-%dT%H:%M:00"))
    page.click("#dry-run")
    page.wait_for_selector("#quiet-warning")
    allowed = f"{QUIET_TO:%H:%M}"
    assert allowed in page.inner_text("#quiet-warning")
    assert page.is_disabled("#send-btn")
    page.locator("#quiet-warning").scroll_into_view_if_needed()
    screenshot(page, "quiet-hours", sizes=("desktop",))
    page.click("#accept-next")
    page.click("#send-btn")
    page.wait_for_url("**/#report/*")
    page.wait_for_selector("#report-status .st-scheduled")
    assert allowed in page.inner_text("#villages-table")
    # The officer changes his mind: cancel it from the schedule.
    broadcast_id = page.url.rsplit("/", 1)[1]
    page.goto("/#schedule")
    row = page.locator(f"#schedule-table tr[data-id='{broadcast_id}']")
    row.wait_for()
    assert "단수 안내" in page.inner_text(".week")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button").click()
    row.wait_for(state="detached")
    page.goto(f"/#report/{broadcast_id}")
    page.wait_for_selector("#report-status .st-cancelled")

"""Outcomes and reports: statuses, reached and missed boxes, who has not heard, CSV for Excel."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from broadcast.report import (
    DeviceLine,
    VillageReport,
    broadcast_status,
    occurrence_status,
    report_csv,
)

SEOUL = ZoneInfo("Asia/Seoul")
AT = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "targeted", "reached", "status"),
    [
        ("finished", {1, 2}, {1, 2}, "done"),
        ("finished", {1, 2}, {1}, "partial"),
        ("finished", set(), set(), "done"),
        ("preempted", {1}, set(), "missed"),  # cut before any box got any of it
        ("finished", {1, 2}, set(), "missed"),  # issue 11 item 15: no box received it
        ("cancelled", {1}, set(), "cancelled"),
    ],
)
def test_occurrence_status(event: str, targeted: set[int], reached: set[int], status: str) -> None:
    assert occurrence_status(event, targeted, reached) == status


@pytest.mark.parametrize(
    ("event", "received", "status"),
    [
        ("preempted", {1}, "partial"),  # the box heard the start of it
        ("finished", {1}, "partial"),
        ("finished", set(), "missed"),
    ],
)
def test_an_occurrence_no_box_received_is_missed(
    event: str, received: set[int], status: str
) -> None:
    assert occurrence_status(event, {1, 2}, set(), received) == status


@pytest.mark.parametrize(
    ("cancelled", "statuses", "status"),
    [
        (False, ["scheduled"], "scheduled"),
        (False, ["done", "scheduled"], "scheduled"),  # recurring: next one pending
        (False, ["done", "playing"], "playing"),
        (False, ["dispatched"], "playing"),
        (False, ["done", "done"], "done"),
        (False, ["done", "partial"], "partial"),
        (False, ["done", "missed"], "partial"),
        (False, ["missed", "missed"], "missed"),
        (True, ["done", "cancelled"], "cancelled"),
    ],
)
def test_broadcast_status(cancelled: bool, statuses: list[str], status: str) -> None:
    assert broadcast_status(cancelled, statuses) == status


def village() -> VillageReport:
    return VillageReport.build(
        village="goseong-eup-seongnae-ri",
        name_ko="성내리",
        status="partial",
        due_at=AT,
        started_at=AT,
        ended_at=AT,
        quiet="clear",
        devices=[
            DeviceLine(2, '=HYPERLINK("x")', False, False, 0, AT),
            DeviceLine(1, "마을회관 스피커", True, True, 4000),
        ],
        registered=[(10, "김씨"), (11, "박씨"), (12, "이씨")],
        live=[10],
        replays={11: AT},
    )


def test_village_report_counts_and_lists() -> None:
    body = village().to_json(SEOUL)
    assert body["speakers"]["targeted"] == 2
    assert body["speakers"]["reached_devices"] == [{"id": 1, "name": "마을회관 스피커"}]
    assert body["speakers"]["missed_devices"][0]["id"] == 2
    assert body["speakers"]["missed_devices"][0]["last_seen"] == "2026-11-26T07:00:00+09:00"
    assert [x["nickname"] for x in body["listeners"]["live"]] == ["김씨"]
    assert [x["nickname"] for x in body["listeners"]["replayed"]] == ["박씨"]
    assert body["listeners"]["not_heard"] == [{"id": 12, "nickname": "이씨"}]


def test_csv_has_a_bom_korean_and_no_formulas() -> None:
    data = report_csv(7, "경로잔치 안내", [village()], SEOUL)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["broadcast", "7", "경로잔치 안내"]
    results = {(r[2], r[4]): r[5] for r in rows[2:]}
    assert results[("speaker", "마을회관 스피커")] == "reached"
    assert results[("speaker", '\'=HYPERLINK("x")')] == "missed"
    assert results[("resident", "이씨")] == "not_heard"
    assert results[("resident", "박씨")] == "replayed"

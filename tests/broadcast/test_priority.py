"""Priorities and the plan the sender sees before sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from broadcast.errors import InvalidSchedule
from broadcast.priority import parse_priority, plan_village
from broadcast.quiet import QuietDecision
from streaming.items import Placement, Priority

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_priority_order_emergency_over_urgent_over_normal() -> None:
    assert parse_priority("emergency") > parse_priority("urgent") > parse_priority("normal")
    assert parse_priority(None) is Priority.NORMAL


@pytest.mark.parametrize("raw", ["loud", 2, ""])
def test_unknown_priority_is_refused(raw: object) -> None:
    with pytest.raises(InvalidSchedule):
        parse_priority(raw)


def test_now_plan_follows_the_channel() -> None:
    placement = Placement("queued", "v", ahead=("마을 안내",))
    entry = plan_village("v", "성내리", NOW, QuietDecision("clear", NOW), placement)
    assert entry.outcome == "queued"
    assert entry.to_json(SEOUL)["message_en"] == "queued behind 마을 안내"


def test_preemption_is_told() -> None:
    placement = Placement("preempts", "v", preempted="마을 안내")
    entry = plan_village("v", "성내리", NOW, QuietDecision("ignored", NOW, NOW), placement)
    body = entry.to_json(SEOUL)
    assert body["outcome"] == "preempts"
    assert body["preempts"] == "마을 안내"
    assert "ignores quiet hours" in body["message_en"]


def test_later_start_is_scheduled_whatever_plays_now() -> None:
    later = NOW + timedelta(hours=2)
    entry = plan_village("v", "", NOW, QuietDecision("clear", later), Placement("queued", "v"))
    assert entry.outcome == "scheduled"
    assert entry.to_json(SEOUL)["at"] == "2026-11-25T12:00:00+09:00"


def test_deferred_plan_says_when() -> None:
    six = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)  # 06:00 in Seoul
    entry = plan_village("v", "", NOW, QuietDecision("deferred", six, six), None)
    assert entry.outcome == "deferred"
    assert "11-26 06:00" in entry.to_json(SEOUL)["message_en"]

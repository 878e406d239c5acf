"""What becomes of an alert, rule by rule (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcast.alerts.areas import AreaMatch
from broadcast.alerts.cap import parse_cap
from broadcast.alerts.decide import decide_alert
from streaming.items import Priority

TYPHOON = (Path(__file__).parent / "cap" / "kma-typhoon-goseong.xml").read_bytes()
NIGHT = datetime(2026, 9, 11, 18, 12, tzinfo=UTC)  # 03:12 in Goseong, two minutes after it was sent
HIT = AreaMatch(frozenset({"donghae-myeon-janggi-ri"}), (("고성군 동해면", "donghae-myeon"),), ())
MISS = AreaMatch(frozenset(), (), (("강원도 고성군", "not this county"),))


def doc(**swap: str) -> bytes:
    out = TYPHOON.decode()
    for tag, value in swap.items():
        out = re.sub(f"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", out)
    return out.encode()


def test_an_extreme_immediate_alert_airs_at_once_as_emergency_with_its_speech() -> None:
    d = decide_alert(parse_cap(TYPHOON), HIT, "extreme", NIGHT)
    assert (d.action, d.priority, d.exercise) == ("air", Priority.EMERGENCY, False)
    assert d.speech.startswith("고성군 동해면·삼산면 태풍경보 발효\n")
    assert d.villages == HIT.villages


@pytest.mark.parametrize(
    ("severity", "auto", "action"),
    [
        ("Moderate", "extreme", "pending"),
        ("Moderate", "all", "air"),
        ("Extreme", "none", "pending"),
        ("Extreme", "all", "air"),
    ],
)
def test_the_auto_setting_decides_what_waits(severity: str, auto: str, action: str) -> None:
    d = decide_alert(parse_cap(doc(severity=severity)), HIT, auto, NIGHT)
    assert d.action == action


@pytest.mark.parametrize("status", ["Draft", "System", "Exercise", "Test"])
def test_drafts_system_messages_and_drills_never_air(status: str) -> None:
    d = decide_alert(parse_cap(doc(status=status)), HIT, "all", NIGHT)
    assert d.action == "ignore"
    assert d.exercise is (status in ("Exercise", "Test"))


def test_nothing_matched_or_expired_is_stored_and_ignored() -> None:
    assert decide_alert(parse_cap(TYPHOON), MISS, "all", NIGHT).reason == (
        "no area of this county matched"
    )
    late = decide_alert(parse_cap(TYPHOON), HIT, "all", NIGHT + timedelta(hours=7))
    assert (late.action, late.reason) == ("ignore", "expired before it was received")


def test_update_replaces_and_cancel_cancels_what_they_reference() -> None:
    ref = "cap@kma.go.kr,KMA-1,2026-09-12T03:10:00+09:00"
    update = TYPHOON.replace(b"<msgType>Alert</msgType>", b"<msgType>Update</msgType>").replace(
        b"<scope>Public</scope>", f"<scope>Public</scope><references>{ref}</references>".encode()
    )
    d = decide_alert(parse_cap(update), HIT, "extreme", NIGHT)
    assert d.action == "air"
    assert d.replaces == (("KMA-1", "cap@kma.go.kr", "2026-09-12T03:10:00+09:00"),)
    cancel = update.replace(b"<msgType>Update</msgType>", b"<msgType>Cancel</msgType>")
    c = decide_alert(parse_cap(cancel), HIT, "extreme", NIGHT)
    assert c.action == "cancel"
    assert c.replaces == d.replaces

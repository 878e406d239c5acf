"""The pure rules of notices: drafts, who may send and see, files by content, rates, CSV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from broadcast.notice_files import (
    AttachmentTooLarge,
    NotAPdf,
    UnsupportedAttachment,
    check_image,
    check_pdf,
    sniff,
)
from broadcast.notices import (
    NotASender,
    check_sender,
    district_rates,
    is_overdue,
    parse_draft,
    parse_reply,
    receipts_csv,
    staff_sees,
    timeline,
)
from devices.errors import InvalidField, NotPermitted, UnknownRegion
from devices.targets import RegionNode, RegionTree, Targets
from tests.web.notice_files import FAKE_PDF, pdf_bytes, png_bytes

NOW = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # Monday 09:00 in Seoul
SEOUL = ZoneInfo("Asia/Seoul")


@dataclass(frozen=True)
class Acc:
    id: int
    role: str
    region_code: str


TREE = RegionTree.build(
    [
        RegionNode("48820", "county", None),
        RegionNode("d1", "district", "48820"),
        RegionNode("d2", "district", "48820"),
        RegionNode("v1", "village", "d1"),
        RegionNode("v2", "village", "d1"),
        RegionNode("w1", "village", "d2"),
    ]
)
ADMIN, OFFICER, OTHER, HEAD = (
    Acc(1, "admin", "48820"),
    Acc(2, "district", "d1"),
    Acc(3, "district", "d2"),
    Acc(4, "village", "v1"),
)


@pytest.mark.parametrize(
    ("account", "targets", "error"),
    [
        (ADMIN, Targets(county=True), None),
        (ADMIN, Targets(villages=("w1",)), None),
        (OFFICER, Targets(districts=("d1",)), None),
        (OFFICER, Targets(villages=("v1", "v2")), None),
        (OFFICER, Targets(county=True), NotPermitted),
        (OFFICER, Targets(villages=("w1",)), NotPermitted),
        (OFFICER, Targets(districts=("d2",)), NotPermitted),
        (OTHER, Targets(villages=("v1",)), NotPermitted),
        (HEAD, Targets(villages=("v1",)), NotASender),
        (ADMIN, Targets(villages=("nowhere",)), UnknownRegion),
        (OFFICER, Targets(villages=("nowhere",)), UnknownRegion),
    ],
)
def test_who_may_send_to_where(account: Acc, targets: Targets, error: type | None) -> None:
    if error is None:
        check_sender(account, targets, TREE)
    else:
        with pytest.raises(error):
            check_sender(account, targets, TREE)


def test_staff_see_all_their_own_district_or_nothing() -> None:
    assert staff_sees(ADMIN, 2, {"d1", "d2"}) is None
    assert staff_sees(OFFICER, 2, {"d1"}) is None  # his own notice, whole
    assert staff_sees(OFFICER, 1, {"d1", "d2"}) == {"d1"}
    assert staff_sees(OTHER, 2, {"d1"}) == frozenset()
    assert staff_sees(HEAD, 1, {"d1"}) == frozenset()


def test_a_draft_is_parsed_with_its_due_time_in_seoul() -> None:
    draft = parse_draft(
        {"title": " 태풍 대비 ", "targets": {"districts": ["d1"]}, "requires_ack": "true",
         "due_at": "2026-11-30T18:00", "broadcast_text": "배수로를 점검합시다"},
        now=NOW, tz=SEOUL,
    )  # fmt: skip
    assert draft.title == "태풍 대비"
    assert draft.requires_ack is True
    assert draft.due_at == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert draft.targets == Targets(districts=("d1",))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"targets": {"villages": ["v1"]}}, "title"),
        ({"title": "a\nb", "targets": {"villages": ["v1"]}}, "title"),
        ({"title": "t", "targets": {"groups": [1]}}, "groups"),
        ({"title": "t", "targets": {"villages": ["v1"]}, "due_at": "2026-12-01T00:00"}, "due_at"),
        (
            {
                "title": "t",
                "targets": {"villages": ["v1"]},
                "requires_ack": True,
                "due_at": "2026-11-29T00:00",
            },
            "due_at",
        ),
        ({"title": "t", "targets": {"villages": ["v1"]}, "requires_ack": "maybe"}, "requires_ack"),
        ({"title": "t", "targets": {"villages": ["v1"]}, "body": "x" * 10_001}, "body"),
        ({"title": "t", "targets": {"villages": ["v1"]}, "body": "bell\x07"}, "body"),
    ],
)
def test_bad_drafts_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidField) as err:
        parse_draft(data, now=NOW, tz=SEOUL)
    assert err.value.extra.get("field") == field


def test_a_reply_needs_text_unless_it_brings_photos() -> None:
    assert parse_reply({"body": "배수로 정비 완료"}, photos=0) == "배수로 정비 완료"
    assert parse_reply({}, photos=1) == ""
    with pytest.raises(InvalidField):
        parse_reply({"body": "  "}, photos=0)


def test_files_are_known_by_their_content() -> None:
    pdf = pdf_bytes()
    assert sniff(pdf[:4096]) == ("pdf", "application/pdf")
    assert sniff(png_bytes()) == ("image", "image/png")
    assert sniff(b"\xff\xd8\xff\xe0" + b"\x00" * 20) == ("image", "image/jpeg")
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("image", "image/webp")
    assert sniff(b"ID3\x04" + b"\x00" * 20) is None  # audio: left to the recordings ingest
    check_pdf(pdf[:4096], pdf[-2048:], len(pdf))
    with pytest.raises(NotAPdf):
        check_pdf(FAKE_PDF, FAKE_PDF, len(FAKE_PDF))
    with pytest.raises(NotAPdf):  # truncated: no %%EOF
        check_pdf(pdf[:4096], pdf[:-30][-2048:], len(pdf) - 30)
    with pytest.raises(AttachmentTooLarge):
        check_pdf(pdf, pdf, 21 * 1024 * 1024)
    assert check_image(png_bytes(), 100) == "image/png"
    with pytest.raises(AttachmentTooLarge):
        check_image(png_bytes(), 11 * 1024 * 1024)
    with pytest.raises(UnsupportedAttachment):
        check_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, 28)
    with pytest.raises(UnsupportedAttachment):
        check_image(pdf, len(pdf))


@dataclass
class Row:
    district_code: str
    read_at: datetime | None = None
    acked_at: datetime | None = None
    replied_at: datetime | None = None
    aired_at: datetime | None = None


def test_rates_per_district_and_overdue() -> None:
    t = NOW + timedelta(hours=1)
    rows = [
        Row("d1", read_at=t, acked_at=t),
        Row("d1", read_at=t + timedelta(minutes=5)),
        Row("d1"),
        Row("d2", read_at=t, replied_at=t, aired_at=t),
    ]
    due = NOW + timedelta(hours=2)
    totals, per = district_rates(rows, True, due, NOW + timedelta(hours=3))
    assert (totals.recipients, totals.read, totals.acked, totals.overdue) == (4, 3, 1, 3)
    d1, d2 = per
    assert (d1.district, d1.read_rate, d1.ack_rate, d1.overdue) == ("d1", 0.6667, 0.3333, 2)
    assert (d2.replied, d2.aired, d2.read_rate) == (1, 1, 1.0)
    assert not is_overdue(rows[0], True, due, NOW + timedelta(hours=3))
    assert not is_overdue(rows[2], True, due, NOW)  # not due yet
    assert not is_overdue(rows[2], False, None, NOW + timedelta(days=9))
    points = timeline(rows)
    assert points[-1]["read"] == 3
    assert points[-1]["acknowledged"] == 1
    assert [p["at"] for p in points] == sorted(p["at"] for p in points)


def test_csv_has_a_bom_and_never_runs_formulas() -> None:
    data = receipts_csv([("d1", "v1", "=HYPERLINK(1)", None, None, None, 0, 0, None, None, "")])
    text = data.decode("utf-8")
    assert text.startswith("\ufeffdistrict,village,village_head")
    assert "'=HYPERLINK(1)" in text

"""Notices to village heads through the real app, on SQLite and PostgreSQL: send, inbox, read
receipts, confirm, reply with photos, receipts per district, remind, rights and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from sqlalchemy import func, select, update

from broadcast.notice_models import Notice, NoticeAttachment, NoticeRecipient, NoticeReply
from devices import store
from devices.models import AuditEntry
from tests.web.notice_files import FAKE_PDF, TEXT_FILE, pdf_bytes, png_bytes
from web.api_announcements import INGEST
from web.keys import SESSIONMAKER
from web.settings import Settings

SEONGNAE = "goseong-eup-seongnae-ri"
SEOOE = "goseong-eup-seooe-ri"
SUNAM = "goseong-eup-sunam-ri"
DONGOE = "goseong-eup-dongoe-ri"  # no village head account in these tests
EN = {"Accept-Language": "en"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """A test server on SQLite or PostgreSQL, without quiet hours."""
    return Settings(
        data_dir=tmp_path / "data", log_format="text", quiet_hours="off", database_url=database_url
    )


class People:
    """Staff accounts of a test: name → (account id, bearer headers)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.ids: dict[str, int] = {}
        self.headers: dict[str, dict[str, str]] = {}

    async def add(self, name: str, role: str, region: str) -> dict[str, str]:
        async with self.client.app[SESSIONMAKER]() as session:
            account = await store.create_account(
                session, name, "correct horse battery", role, region
            )
            issued = await store.create_api_token(session, account, "test")
            await session.commit()
        self.ids[name] = account.id
        self.headers[name] = {"Authorization": f"Bearer {issued.token}", **EN}
        return self.headers[name]

    def __getitem__(self, name: str) -> dict[str, str]:
        return self.headers[name]


@pytest.fixture
async def people(client: Any) -> People:
    """A county admin, two district officers, and village heads of three 고성읍 villages and one
    하일면 village."""
    p = People(client)
    await p.add("county", "admin", "48820")
    await p.add("officer", "district", "goseong-eup")
    await p.add("hail", "district", "hail-myeon")
    await p.add("sangni", "district", "sangni-myeon")
    for name, village in (("seongnae", SEONGNAE), ("seooe", SEOOE), ("sunam", SUNAM)):
        await p.add(name, "village", village)
    async with client.app[SESSIONMAKER]() as session:
        tree = await store.load_tree(session)
    p.hail_village = tree.children("hail-myeon")[0].code  # type: ignore[attr-defined]
    await p.add("hailhead", "village", p.hail_village)  # type: ignore[attr-defined]
    return p


def notice_form(fields: dict[str, Any], files: list[tuple[str, bytes, str]]) -> FormData:
    form = FormData()
    for key, value in fields.items():
        form.add_field(key, json.dumps(value) if isinstance(value, dict) else str(value))
    for name, data, ctype in files:
        form.add_field("attachments", data, filename=name, content_type=ctype)
    return form


async def send(client: Any, headers: dict[str, str], **fields: Any) -> Any:
    files = fields.pop("files", None)
    if files is None:
        return await client.post("/api/v1/notices", json=fields, headers=headers)
    return await client.post("/api/v1/notices", data=notice_form(fields, files), headers=headers)


async def typhoon(client: Any, people: People, **extra: Any) -> int:
    """The 고성읍 officer sends the typhoon notice with a PDF to three villages and one headless."""
    resp = await send(
        client, people["officer"], title="태풍 대비 마을 점검 요청", body="배수로를 점검해 주세요.",
        targets={"villages": [SEONGNAE, SEOOE, SUNAM, DONGOE]}, requires_ack="true",
        files=[("점검표.pdf", pdf_bytes(), "application/pdf")], **extra,
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def count(client: Any, model: Any) -> int:
    async with client.app[SESSIONMAKER]() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_officer_sends_with_a_pdf_and_learns_the_villages_without_a_head(
    client: Any, people: People
) -> None:
    resp = await send(
        client, people["officer"], title="태풍 대비 마을 점검 요청",
        targets={"villages": [SEONGNAE, SEOOE, SUNAM, DONGOE]},
        files=[("점검표.pdf", pdf_bytes(), "application/pdf")],
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["recipients"] == 3
    assert body["headless_villages"] == [DONGOE]
    assert resp.headers["Location"] == f"/api/v1/notices/{body['id']}"
    notice = await (await client.get(body["url"], headers=people["seongnae"])).json()
    assert notice["title"] == "태풍 대비 마을 점검 요청"
    [pdf] = notice["attachments"]
    assert (pdf["kind"], pdf["media_type"], pdf["name"]) == ("pdf", "application/pdf", "점검표.pdf")
    got = await client.get(pdf["url"], headers=people["seongnae"])
    assert got.status == 200
    assert (await got.read()) == pdf_bytes()
    assert got.headers["Content-Type"] == "application/pdf"
    async with client.app[SESSIONMAKER]() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "notice.send"))
    assert entry is not None
    assert entry.target == f"notice:{body['id']}"
    assert entry.detail["recipients"] == 3
    assert entry.detail["headless"] == [DONGOE]


async def test_a_district_sends_to_a_whole_district_and_the_county_to_everyone(
    client: Any, people: People
) -> None:
    resp = await send(
        client, people["officer"], title="읍 전체", targets={"districts": ["goseong-eup"]}
    )
    assert (await resp.json())["recipients"] == 3
    resp = await send(client, people["county"], title="군 전체", targets={"county": True})
    body = await resp.json()
    assert body["recipients"] == 4
    assert len(body["headless_villages"]) > 100


@pytest.mark.parametrize(
    ("sender", "targets", "status"),
    [
        ("county", {"county": True}, 201),
        ("county", {"villages": [SEONGNAE]}, 201),
        ("officer", {"districts": ["goseong-eup"]}, 201),
        ("officer", {"villages": [SEONGNAE]}, 201),
        ("officer", {"county": True}, 403),
        ("officer", {"districts": ["hail-myeon"]}, 403),
        ("hail", {"villages": [SEONGNAE]}, 403),
        ("seongnae", {"villages": [SEONGNAE]}, 403),
        ("county", {"villages": ["nowhere-ri"]}, 404),
        ("officer", {"districts": ["nowhere"]}, 404),
        ("county", {"groups": [1]}, 422),
        ("county", {}, 422),
    ],
)
async def test_who_may_send_where(
    client: Any, people: People, sender: str, targets: dict[str, Any], status: int
) -> None:
    before = await count(client, Notice)
    resp = await send(client, people[sender], title="점검", targets=targets)
    assert resp.status == status, await resp.text()
    if status != 201:
        problem = await resp.json()
        assert resp.content_type == "application/problem+json"
        assert problem["title_ko"]
        assert problem["title_en"]
        assert await count(client, Notice) == before


async def test_inbox_is_unread_first_then_newest_and_shows_only_what_was_sent_to_me(
    client: Any, people: People
) -> None:
    first = await typhoon(client, people)
    second = (
        await (
            await send(client, people["officer"], title="둘째", targets={"villages": [SEONGNAE]})
        ).json()
    )["id"]
    third = (
        await (
            await send(client, people["officer"], title="셋째", targets={"villages": [SEOOE]})
        ).json()
    )["id"]
    await client.get(f"/api/v1/notices/{second}", headers=people["seongnae"])  # read the second
    inbox = await (await client.get("/api/v1/notices", headers=people["seongnae"])).json()
    assert [n["id"] for n in inbox["items"]] == [first, second]
    assert inbox["unread"] == 1
    assert inbox["items"][0]["mine"]["read_at"] is None
    assert inbox["items"][1]["mine"]["read_at"] is not None
    other = await (await client.get("/api/v1/notices", headers=people["seooe"])).json()
    assert [n["id"] for n in other["items"]] == [third, first]
    assert other["unread"] == 2
    # Another village's notice answers exactly like a missing one.
    hidden = await client.get(f"/api/v1/notices/{third}", headers=people["seongnae"])
    missing = await client.get("/api/v1/notices/999999", headers=people["seongnae"])
    assert hidden.status == missing.status == 404
    a, b = await hidden.json(), await missing.json()
    assert {k: v for k, v in a.items() if k not in ("detail", "request_id")} == {
        k: v for k, v in b.items() if k not in ("detail", "request_id")
    }
    for path in ("ack", "replies", "air"):
        assert (
            await client.post(
                f"/api/v1/notices/{third}/{path}", json={}, headers=people["seongnae"]
            )
        ).status == 404


async def test_opening_records_the_read_receipt_once_and_confirming_keeps_the_first_time(
    client: Any, people: People
) -> None:
    nid = await typhoon(client, people)
    opened = await (await client.get(f"/api/v1/notices/{nid}", headers=people["seongnae"])).json()
    read_at = opened["mine"]["read_at"]
    assert read_at is not None
    again = await (await client.get(f"/api/v1/notices/{nid}", headers=people["seongnae"])).json()
    assert again["mine"]["read_at"] == read_at
    ack = await client.post(f"/api/v1/notices/{nid}/ack", headers=people["seongnae"])
    assert ack.status == 200
    acked_at = (await ack.json())["acknowledged_at"]
    ack2 = await client.post(f"/api/v1/notices/{nid}/ack", headers=people["seongnae"])
    assert (await ack2.json())["acknowledged_at"] == acked_at
    # Staff reading it record nothing; they cannot confirm it.
    await client.get(f"/api/v1/notices/{nid}", headers=people["officer"])
    assert (
        await client.post(f"/api/v1/notices/{nid}/ack", headers=people["officer"])
    ).status == 403
    receipts = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["officer"])
    ).json()
    assert receipts["totals"]["read"] == 1
    assert receipts["totals"]["acknowledged"] == 1
    assert receipts["totals"]["recipients"] == 3


async def test_a_reply_with_a_photo_is_seen_by_its_author_and_the_sender_only(
    client: Any, people: People
) -> None:
    nid = await typhoon(client, people)
    form = FormData()
    form.add_field("body", "배수로 정비 완료")
    form.add_field("photos", png_bytes(), filename="drain.jpg", content_type="image/jpeg")
    resp = await client.post(
        f"/api/v1/notices/{nid}/replies", data=form, headers=people["seongnae"]
    )
    assert resp.status == 201, await resp.text()
    reply = await resp.json()
    assert reply["body"] == "배수로 정비 완료"
    [photo] = reply["photos"]
    assert photo["media_type"] == "image/png"  # by its content, not its name or part header
    await client.post(
        f"/api/v1/notices/{nid}/replies", json={"body": "추가 보고"}, headers=people["seongnae"]
    )
    mine = await (await client.get(f"/api/v1/notices/{nid}", headers=people["seongnae"])).json()
    assert [r["body"] for r in mine["replies"]] == ["배수로 정비 완료", "추가 보고"]
    neighbour = await (await client.get(f"/api/v1/notices/{nid}", headers=people["seooe"])).json()
    assert neighbour["replies"] == []
    assert (await client.get(photo["url"], headers=people["seooe"])).status == 404
    got = await client.get(photo["url"], headers=people["officer"])
    assert got.status == 200
    assert await got.read() == png_bytes()
    receipts = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["officer"])
    ).json()
    row = next(r for r in receipts["recipients"] if r["village"] == SEONGNAE)
    assert row["replied_at"] is not None
    assert [r["body"] for r in row["replies"]] == ["배수로 정비 완료", "추가 보고"]
    assert receipts["totals"]["replied"] == 1
    async with client.app[SESSIONMAKER]() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert actions.count("notice.reply") == 2


async def test_receipts_per_district_rates_csv_and_overdue(client: Any, people: People) -> None:
    resp = await send(
        client, people["county"], title="태풍 대비", targets={"county": True}, requires_ack=True,
        due_at=(datetime.now(UTC) + timedelta(hours=9)).isoformat(),
    )  # fmt: skip
    nid = (await resp.json())["id"]
    await client.get(f"/api/v1/notices/{nid}", headers=people["seongnae"])
    await client.post(f"/api/v1/notices/{nid}/ack", headers=people["seooe"])
    county = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["county"])
    ).json()
    assert county["totals"]["recipients"] == 4
    rates = {d["district"]: d for d in county["districts"]}
    assert rates["goseong-eup"]["read"] == 2
    assert rates["goseong-eup"]["read_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert rates["goseong-eup"]["ack_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert rates["hail-myeon"]["read_rate"] == 0
    last = county["timeline"][-1]
    assert (last["read"], last["acknowledged"]) == (2, 1)
    assert [p["read"] for p in county["timeline"]] == sorted(p["read"] for p in county["timeline"])
    assert county["totals"]["overdue"] == 0
    # A district officer sees his own district's receipts of the county's notice only.
    officer = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["officer"])
    ).json()
    assert {r["district"] for r in officer["recipients"]} == {"goseong-eup"}
    assert [d["district"] for d in officer["districts"]] == ["goseong-eup"]
    hail = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["hail"])
    ).json()
    assert [r["village"] for r in hail["recipients"]] == [people.hail_village]  # type: ignore[attr-defined]
    listed = await (await client.get("/api/v1/notices", headers=people["officer"])).json()
    assert listed["items"][0]["counts"]["recipients"] == 3
    # Village heads never see receipts.
    assert (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["seongnae"])
    ).status == 403
    # The due time passes: the unconfirmed ones are overdue.
    async with client.app[SESSIONMAKER]() as session:
        await session.execute(
            update(Notice)
            .where(Notice.id == nid)
            .values(due_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        await session.commit()
    county = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["county"])
    ).json()
    assert county["totals"]["overdue"] == 3
    assert [r["village"] for r in county["recipients"] if r["overdue"]] != []
    assert not next(r for r in county["recipients"] if r["village"] == SEOOE)["overdue"]
    csv = await client.get(f"/api/v1/notices/{nid}/receipts.csv", headers=people["officer"])
    assert csv.status == 200
    text = (await csv.read()).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("district,village,village_head,read_at")
    assert len(lines) == 1 + 3
    assert any(SEOOE in line and line.endswith(",") for line in lines)  # confirmed: not overdue
    assert any(SUNAM in line and line.endswith("yes") for line in lines)


async def test_a_district_outside_the_notice_cannot_see_it(client: Any, people: People) -> None:
    nid = await typhoon(client, people)
    for who in ("sangni", "hail"):
        assert (await client.get(f"/api/v1/notices/{nid}", headers=people[who])).status == 404
        assert (
            await client.get(f"/api/v1/notices/{nid}/receipts", headers=people[who])
        ).status == 404
        assert (
            await client.post(f"/api/v1/notices/{nid}/remind", headers=people[who])
        ).status == 404
        listed = await (await client.get("/api/v1/notices", headers=people[who])).json()
        assert listed["items"] == []
    assert (await client.get(f"/api/v1/notices/{nid}", headers=people["county"])).status == 200


async def test_remind_reaches_only_those_who_have_not_read_it(client: Any, people: People) -> None:
    nid = await typhoon(client, people)
    await client.get(f"/api/v1/notices/{nid}", headers=people["seongnae"])
    sockets = {
        name: await client.ws_connect("/api/v1/events", headers=people[name])
        for name in ("seongnae", "seooe", "sunam", "hailhead")
    }
    try:
        for ws in sockets.values():
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
        resp = await client.post(f"/api/v1/notices/{nid}/remind", headers=people["officer"])
        assert resp.status == 200
        assert sorted((await resp.json())["villages"]) == [SEOOE, SUNAM]
        for name in ("seooe", "sunam"):
            event = await sockets[name].receive_json(timeout=5)
            assert (event["type"], event["notice_id"]) == ("notice.reminder", nid)
        for name in ("seongnae", "hailhead"):
            with pytest.raises(TimeoutError):
                await sockets[name].receive_json(timeout=0.5)
    finally:
        for ws in sockets.values():
            await ws.close()
    receipts = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["officer"])
    ).json()
    assert {r["village"]: r["reminders"] for r in receipts["recipients"]} == {
        SEONGNAE: 0,
        SEOOE: 1,
        SUNAM: 1,
    }
    async with client.app[SESSIONMAKER]() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "notice.remind"))
    assert entry is not None
    assert entry.detail["reminded"] == 2


async def test_a_new_notice_event_reaches_its_recipients_and_nobody_else(
    client: Any, people: People
) -> None:
    sockets = {
        name: await client.ws_connect("/api/v1/events", headers=people[name])
        for name in ("seongnae", "hailhead", "hail")
    }
    try:
        for ws in sockets.values():
            await ws.receive_json(timeout=5)
        nid = await typhoon(client, people)
        event = await sockets["seongnae"].receive_json(timeout=5)
        assert event["type"] == "notice.created"
        assert event["notice_id"] == nid
        assert event["title"] == "태풍 대비 마을 점검 요청"
        for name in ("hailhead", "hail"):
            with pytest.raises(TimeoutError):
                await sockets[name].receive_json(timeout=0.5)
    finally:
        for ws in sockets.values():
            await ws.close()


async def test_who_was_the_head_when_it_was_sent_is_what_the_receipt_shows(
    client: Any, people: People
) -> None:
    nid = await typhoon(client, people)
    async with client.app[SESSIONMAKER]() as session:
        old = await store.get_account(session, people.ids["seongnae"])
        await store.disable_account(session, old)
        await store.create_account(session, "newhead", "correct horse battery", "village", SEONGNAE)
        await session.commit()
    receipts = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["officer"])
    ).json()
    assert (
        next(r for r in receipts["recipients"] if r["village"] == SEONGNAE)["village_head"]
        == "seongnae"
    )
    later = await send(client, people["officer"], title="새 공지", targets={"villages": [SEONGNAE]})
    receipts = await (
        await client.get(
            f"/api/v1/notices/{(await later.json())['id']}/receipts", headers=people["officer"]
        )
    ).json()
    assert [r["village_head"] for r in receipts["recipients"]] == ["newhead"]


@pytest.mark.parametrize(
    ("files", "status", "slug"),
    [
        ([("notice.pdf", FAKE_PDF, "application/pdf")], 422, "not-a-pdf"),
        ([("notice.pdf", pdf_bytes()[:-40], "application/pdf")], 422, "not-a-pdf"),
        (
            [("big.png", png_bytes(pad_to=10 * 1024 * 1024 + 10), "image/png")],
            413,
            "attachment-too-large",
        ),
        (
            [("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png")],
            415,
            "unsupported-attachment",
        ),
        ([("readme.mp3", TEXT_FILE, "audio/mpeg")], None, None),
        (
            [("ok.pdf", pdf_bytes(), "application/pdf"), ("bad.pdf", FAKE_PDF, "application/pdf")],
            422,
            "not-a-pdf",
        ),
    ],
)
async def test_bad_attachments_are_refused_and_nothing_is_written(
    client: Any,
    people: People,
    files: list[tuple[str, bytes, str]],
    status: int | None,
    slug: str | None,
) -> None:
    before = {m: await count(client, m) for m in (Notice, NoticeRecipient, NoticeAttachment)}
    resp = await send(
        client, people["officer"], title="점검", targets={"villages": [SEONGNAE]}, files=files
    )
    problem = await resp.json()
    assert 400 <= resp.status < 500, problem
    if status is not None:
        assert resp.status == status, problem
        assert problem["type"] == f"/problems/{slug}"
    assert problem["title_ko"]
    assert {m: await count(client, m) for m in before} == before
    assert list(client.app[INGEST].archive.incoming.iterdir()) == []


async def test_bad_fields_are_refused(client: Any, people: People) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    cases = [
        ({"targets": {"villages": [SEONGNAE]}}, "title"),
        ({"title": "x" * 201, "targets": {"villages": [SEONGNAE]}}, "title"),
        (
            {
                "title": "점검",
                "targets": {"villages": [SEONGNAE]},
                "requires_ack": True,
                "due_at": past,
            },
            "due_at",
        ),
        ({"title": "점검", "targets": {"villages": [SEONGNAE]}, "due_at": "tomorrow"}, "due_at"),
        ({"title": "점검", "targets": {"villages": [SEONGNAE]}, "colour": "red"}, None),
        ({"title": "점검", "targets": "everywhere"}, "targets"),
    ]
    for body, field in cases:
        resp = await client.post("/api/v1/notices", json=body, headers=people["officer"])
        problem = await resp.json()
        assert resp.status == 422, (body, problem)
        if field:
            assert problem.get("field") == field or field in problem["detail"], problem
    assert await count(client, Notice) == 0
    nid = await typhoon(client, people)
    resp = await client.post(
        f"/api/v1/notices/{nid}/replies", json={"body": ""}, headers=people["seongnae"]
    )
    assert resp.status == 422
    assert await count(client, NoticeReply) == 0
    form = FormData()
    form.add_field("body", "사진")
    form.add_field("photos", pdf_bytes(), filename="photo.jpg", content_type="image/jpeg")
    resp = await client.post(
        f"/api/v1/notices/{nid}/replies", data=form, headers=people["seongnae"]
    )
    assert resp.status == 415
    assert await count(client, NoticeReply) == 0


async def test_a_district_officer_reminds_only_his_own_district_of_a_county_notice(
    client: Any, people: People
) -> None:
    resp = await send(client, people["county"], title="태풍 대비", targets={"county": True})
    nid = (await resp.json())["id"]
    assert (
        await client.post(f"/api/v1/notices/{nid}/remind", headers=people["seongnae"])
    ).status == 403
    reminded = await (
        await client.post(f"/api/v1/notices/{nid}/remind", headers=people["hail"])
    ).json()
    assert reminded["villages"] == [people.hail_village]  # type: ignore[attr-defined]
    receipts = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["county"])
    ).json()
    counts = {r["village"]: r["reminders"] for r in receipts["recipients"]}
    assert counts == {SEONGNAE: 0, SEOOE: 0, SUNAM: 0, people.hail_village: 1}  # type: ignore[attr-defined]
    everyone = await (
        await client.post(f"/api/v1/notices/{nid}/remind", headers=people["county"])
    ).json()
    assert len(everyone["villages"]) == 4

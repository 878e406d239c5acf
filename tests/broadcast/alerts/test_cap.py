"""CAP 1.2 parsing: the OASIS examples and a Korean typhoon warning read right; bad documents are
refused with the first error named, and our checks agree with OASIS's schema on every mutation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broadcast.alerts.cap import MAX_CAP_BYTES, alert_priority, parse_cap, speech_text
from broadcast.alerts.errors import AlertTooLarge, AlertUnsafeXml, InvalidAlert, NotCapXml
from streaming.items import Priority

CAP_DIR = Path(__file__).parent / "cap"
XSD = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "cap" / "CAP-v1.2.xsd"
TYPHOON = (CAP_DIR / "kma-typhoon-goseong.xml").read_bytes()


@pytest.mark.parametrize(
    ("name", "identifier", "msg_type", "infos", "priority"),
    [
        ("oasis-a1-homeland-security.xml", "43b080713727", "Alert", 1, Priority.EMERGENCY),
        ("oasis-a2-thunderstorm.xml", "KSTO1055887203", "Alert", 1, Priority.EMERGENCY),
        ("oasis-a3-earthquake-update.xml", "TRI13970876.2", "Update", 1, Priority.NORMAL),
        ("oasis-a4-amber.xml", "KAR0-0306112239-SW", "Alert", 2, Priority.EMERGENCY),
        ("kma-typhoon-goseong.xml", "KMA-20260912-0310-TY-0042", "Alert", 2, Priority.EMERGENCY),
    ],
)
def test_reads_the_specification_examples(
    name: str, identifier: str, msg_type: str, infos: int, priority: Priority
) -> None:
    alert = parse_cap((CAP_DIR / name).read_bytes())
    assert (alert.identifier, alert.msg_type, len(alert.infos)) == (identifier, msg_type, infos)
    info = alert.info("ko")
    assert info is not None
    assert alert_priority(info) is priority


def test_korean_block_is_spoken_headline_description_instruction() -> None:
    alert = parse_cap(TYPHOON)
    info = alert.info("ko")
    assert info is not None
    assert info.language == "ko-KR"
    lines = speech_text(info).splitlines()
    assert lines[0] == "고성군 동해면·삼산면 태풍경보 발효"
    assert lines[1].startswith("03시 10분 경상남도 고성군")
    assert lines[2].startswith("해안가 저지대 주민은")
    assert info.expires is not None
    assert info.expires.utcoffset() is not None
    assert alert.key == ("KMA-20260912-0310-TY-0042", "cap@kma.go.kr", "2026-09-12T03:10:00+09:00")
    assert not alert.exercise


def test_without_a_korean_block_the_first_is_read() -> None:
    alert = parse_cap((CAP_DIR / "oasis-a4-amber.xml").read_bytes())
    assert alert.info("ko") is alert.infos[0]


@pytest.mark.parametrize(
    ("severity", "urgency", "priority"),
    [
        ("Extreme", "Immediate", Priority.EMERGENCY),
        ("Severe", "Expected", Priority.EMERGENCY),
        ("Severe", "Future", Priority.URGENT),
        ("Extreme", "Past", Priority.URGENT),
        ("Moderate", "Immediate", Priority.NORMAL),
        ("Unknown", "Unknown", Priority.NORMAL),
    ],
)
def test_priority_from_severity_and_urgency(
    severity: str, urgency: str, priority: Priority
) -> None:
    doc = TYPHOON.replace(
        b"<severity>Extreme</severity>", f"<severity>{severity}</severity>".encode()
    )
    doc = doc.replace(b"<urgency>Immediate</urgency>", f"<urgency>{urgency}</urgency>".encode())
    info = parse_cap(doc).info("ko")
    assert info is not None
    assert alert_priority(info) is priority


@pytest.mark.parametrize("status", ["Exercise", "Test"])
def test_exercise_and_test_are_drills(status: str) -> None:
    doc = TYPHOON.replace(b"<status>Actual</status>", f"<status>{status}</status>".encode())
    assert parse_cap(doc).exercise


def _sub(old: str, new: str) -> bytes:
    assert old.encode() in TYPHOON, old
    return TYPHOON.replace(old.encode(), new.encode(), 1)


# (what is wrong, the document, the path the error must name); every one is also invalid per the XSD
S = "2026-09-12T03:10:00"
MUTATIONS = [
    ("no identifier", _sub("<identifier>KMA-20260912-0310-TY-0042</identifier>", ""),
     "alert/identifier"),
    ("space in sender", _sub("cap@kma.go.kr", "cap kma"), "alert/sender"),
    ("no time zone", _sub(f"{S}+09:00</sent>", f"{S}</sent>"), "alert/sent"),
    ("Z time zone", _sub(f"{S}+09:00</sent>", f"{S}Z</sent>"), "alert/sent"),
    ("bad status", _sub("<status>Actual</status>", "<status>Real</status>"), "alert/status"),
    ("bad msgType", _sub("<msgType>Alert</msgType>", "<msgType>Warning</msgType>"),
     "alert/msgType"),
    ("no scope", _sub("<scope>Public</scope>", ""), "alert/scope"),
    ("order", _sub("<status>Actual</status>\n  <msgType>Alert</msgType>",
                   "<msgType>Alert</msgType>\n  <status>Actual</status>"), "alert/"),
    ("unknown element", _sub("<scope>Public</scope>", "<scope>Public</scope><colour>red</colour>"),
     "alert/colour"),
    ("bad category", _sub("<category>Met</category>", "<category>Weather</category>"),
     "alert/info[1]/category"),
    ("no event", _sub("<event>태풍경보</event>", ""), "alert/info[1]/event"),
    ("bad urgency", _sub("<urgency>Immediate</urgency>", "<urgency>Soon</urgency>"),
     "alert/info[1]/urgency"),
    ("bad expires", _sub("2026-09-12T09:00:00+09:00", "tomorrow"), "alert/info[1]/expires"),
    ("no areaDesc", _sub("<areaDesc>경상남도 고성군 동해면, 삼산면</areaDesc>", ""),
     "alert/info[1]/area[1]/areaDesc"),
    ("bad responseType",
     _sub("<responseType>Evacuate</responseType>", "<responseType>Run</responseType>"),
     "alert/info[1]/responseType"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "doc", "path"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_invalid_documents_name_the_first_error(what: str, doc: bytes, path: str) -> None:
    with pytest.raises(InvalidAlert) as err:
        parse_cap(doc)
    assert err.value.detail.startswith(path), err.value.detail


@pytest.mark.skipif(not XSD.exists(), reason="OASIS's CAP-v1.2.xsd lies in ../shared only")
def test_our_checks_agree_with_the_oasis_schema() -> None:
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(XSD))
    for name in sorted(p.name for p in CAP_DIR.glob("*.xml")):
        assert schema.is_valid(str(CAP_DIR / name)), name
    for what, doc, _ in MUTATIONS:
        if what == "space in sender":
            continue  # the spec forbids it in prose; the schema types sender as a plain string
        assert not schema.is_valid(doc.decode()), what


def test_wrong_namespace_is_named() -> None:
    doc = TYPHOON.replace(b"emergency:cap:1.2", b"emergency:cap:1.1")
    with pytest.raises(InvalidAlert, match=re.escape("urn:oasis:names:tc:emergency:cap:1.1")):
        parse_cap(doc)


@pytest.mark.parametrize("doc", [b"", b"not xml", b"<alert", b"<html><body/></html>"])
def test_not_cap_at_all(doc: bytes) -> None:
    with pytest.raises(NotCapXml):
        parse_cap(doc)


def test_entity_expansion_bomb_is_refused_before_expanding() -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY l0 "lol">{lol}]>'
    bomb += (
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&l9;</identifier></alert>'
    )
    with pytest.raises(AlertUnsafeXml):
        parse_cap(bomb.encode())


def test_external_entity_is_refused() -> None:
    doc = TYPHOON.replace(
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    ).replace(b"<headline>", b"<headline>&x;")
    with pytest.raises(AlertUnsafeXml):
        parse_cap(doc)


def test_oversized_document_is_refused_unparsed() -> None:
    doc = TYPHOON.replace(b"</alert>", b"<!--" + b"x" * MAX_CAP_BYTES + b"--></alert>")
    with pytest.raises(AlertTooLarge):
        parse_cap(doc)


def test_update_and_cancel_name_what_they_refer_to() -> None:
    doc = _sub("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>")
    with pytest.raises(InvalidAlert, match="alert/references"):
        parse_cap(doc)
    ref = "cap@kma.go.kr,KMA-20260912-0310-TY-0042,2026-09-12T03:10:00+09:00"
    doc = doc.replace(
        b"<scope>Public</scope>", f"<scope>Public</scope><references>{ref}</references>".encode()
    )
    alert = parse_cap(doc)
    assert alert.msg_type == "Cancel"
    assert alert.references == (
        ("cap@kma.go.kr", "KMA-20260912-0310-TY-0042", "2026-09-12T03:10:00+09:00"),
    )

"""CAP 1.2 (OASIS Common Alerting Protocol) documents: parse, check, read what goes on air. Pure.

The checks are written from the CAP 1.2 specification (OASIS Standard, 1 July 2010, section 3) and
its schema: the element sequences with their cardinalities, the value lists, and the date-time form.
The first error found is named by its path (``alert/info[2]/urgency``). XML is parsed with
``defusedxml``: a document with a DTD or entities (the "billion laughs" bomb) is refused outright,
and the size is checked before parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from streaming.items import Priority

from .errors import AlertTooLarge, AlertUnsafeXml, InvalidAlert, NotCapXml

__all__ = [
    "CAP_NS",
    "MAX_CAP_BYTES",
    "Area",
    "CapAlert",
    "Info",
    "alert_priority",
    "parse_cap",
    "speech_text",
]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_CAP_BYTES = 256 * 1024  # real alerts are a few KB; the largest OASIS example is under 4 KB
_NS = "{" + CAP_NS + "}"
_DATETIME = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
_NO_SPACE = re.compile(r"^[^\s,<&]+$")

STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
)  # fmt: skip
RESPONSE_TYPES = (
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None",
)  # fmt: skip
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

# (element, min, max) in schema order; max None = unbounded.
_Seq = tuple[tuple[str, int, int | None], ...]
_ALERT: _Seq = (
    ("identifier", 1, 1), ("sender", 1, 1), ("sent", 1, 1), ("status", 1, 1), ("msgType", 1, 1),
    ("source", 0, 1), ("scope", 1, 1), ("restriction", 0, 1), ("addresses", 0, 1),
    ("code", 0, None), ("note", 0, 1), ("references", 0, 1), ("incidents", 0, 1),
    ("info", 0, None),
)  # fmt: skip
_INFO: _Seq = (
    ("language", 0, 1), ("category", 1, None), ("event", 1, 1), ("responseType", 0, None),
    ("urgency", 1, 1), ("severity", 1, 1), ("certainty", 1, 1), ("audience", 0, 1),
    ("eventCode", 0, None), ("effective", 0, 1), ("onset", 0, 1), ("expires", 0, 1),
    ("senderName", 0, 1), ("headline", 0, 1), ("description", 0, 1), ("instruction", 0, 1),
    ("web", 0, 1), ("contact", 0, 1), ("parameter", 0, None), ("resource", 0, None),
    ("area", 0, None),
)  # fmt: skip
_AREA: _Seq = (
    ("areaDesc", 1, 1), ("polygon", 0, None), ("circle", 0, None), ("geocode", 0, None),
    ("altitude", 0, 1), ("ceiling", 0, 1),
)  # fmt: skip
_RESOURCE: _Seq = (
    ("resourceDesc", 1, 1), ("mimeType", 1, 1), ("size", 0, 1), ("uri", 0, 1),
    ("derefUri", 0, 1), ("digest", 0, 1),
)  # fmt: skip
_PAIR: _Seq = (("valueName", 1, 1), ("value", 1, 1))

Status = Literal["Actual", "Exercise", "System", "Test", "Draft"]
MsgType = Literal["Alert", "Update", "Cancel", "Ack", "Error"]


@dataclass(frozen=True, slots=True)
class Area:
    """One ``area`` block: its description and geocodes (``valueName``, ``value``)."""

    area_desc: str
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Info:
    """One ``info`` block (one per language)."""

    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str = ""
    description: str = ""
    instruction: str = ""
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str = ""
    areas: tuple[Area, ...] = ()


@dataclass(frozen=True, slots=True)
class CapAlert:
    """A checked CAP 1.2 ``alert``."""

    identifier: str
    sender: str
    sent: datetime
    status: Status
    msg_type: MsgType
    scope: str
    infos: tuple[Info, ...] = ()
    references: tuple[tuple[str, str, str], ...] = ()  # (sender, identifier, sent) triples
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two documents the same alert: identifier, sender, sent (as written)."""
        return (self.identifier, self.sender, self.sent.isoformat())

    @property
    def exercise(self) -> bool:
        """``Exercise`` and ``Test`` alerts run the whole path but reach test devices only."""
        return self.status in ("Exercise", "Test")

    def info(self, language: str = "ko") -> Info | None:
        """The info block in this language (``ko`` matches ``ko-KR``), else the first, else None."""
        for block in self.infos:
            if block.language.lower().split("-")[0] == language:
                return block
        return self.infos[0] if self.infos else None


def parse_cap(data: bytes) -> CapAlert:
    """Check a CAP 1.2 document and return it; :class:`InvalidAlert` names the first error."""
    if len(data) > MAX_CAP_BYTES:
        raise AlertTooLarge(f"a CAP document may be at most {MAX_CAP_BYTES // 1024} KB")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise AlertUnsafeXml("the document has a DTD or entity declarations") from None
    except ParseError as exc:
        raise NotCapXml(f"not well-formed XML: {exc}") from None
    if root.tag != _NS + "alert":
        ns, _, local = (
            root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
        )
        if local == "alert":
            raise InvalidAlert(f"alert: namespace {ns or '(none)'!r} is not CAP 1.2 ({CAP_NS})")
        raise NotCapXml(f"the root element is {local!r}, not a CAP 1.2 alert")
    return _alert(root)


def alert_priority(info: Info) -> Priority:
    """Extreme/Severe and Immediate/Expected → emergency; other Extreme/Severe → urgent."""
    soon = info.urgency in ("Immediate", "Expected")
    if info.severity in ("Extreme", "Severe") and soon:
        return Priority.EMERGENCY
    if info.severity in ("Extreme", "Severe"):
        return Priority.URGENT
    return Priority.NORMAL


def speech_text(info: Info) -> str:
    """What is read out: headline, then description, then instruction (empty parts skipped)."""
    parts = [p.strip() for p in (info.headline, info.description, info.instruction)]
    seen: list[str] = []
    for p in parts:
        if p and p not in seen:
            seen.append(p)
    return "\n".join(seen) or info.event


# --- the checks -------------------------------------------------------------------------------


def _alert(root: Element) -> CapAlert:
    fields = _sequence(root, _ALERT, "alert", allow_other_ns=True)
    identifier = _token(fields, "identifier", "alert")
    sender = _token(fields, "sender", "alert")
    sent = _when(fields["sent"][0], "alert/sent")
    status = _one_of(fields, "status", STATUSES, "alert")
    msg_type = _one_of(fields, "msgType", MSG_TYPES, "alert")
    scope = _one_of(fields, "scope", SCOPES, "alert")
    if scope == "Restricted" and "restriction" not in fields:
        raise InvalidAlert("alert/restriction: required when scope is Restricted")
    if scope == "Private" and "addresses" not in fields:
        raise InvalidAlert("alert/addresses: required when scope is Private")
    references = _references(_text(fields["references"][0]) if "references" in fields else "")
    if msg_type in ("Update", "Cancel") and not references:
        raise InvalidAlert(f"alert/references: an {msg_type} must name the alert it refers to")
    infos = tuple(_info(el, f"alert/info[{i}]") for i, el in enumerate(fields.get("info", []), 1))
    return CapAlert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status,  # type: ignore[arg-type]
        msg_type=msg_type,  # type: ignore[arg-type]
        scope=scope,
        infos=infos,
        references=references,
        note=_text(fields["note"][0]) if "note" in fields else "",
    )


def _info(el: Element, path: str) -> Info:
    fields = _sequence(el, _INFO, path)
    for i, cat in enumerate(fields["category"], 1):
        if _text(cat) not in CATEGORIES:
            raise InvalidAlert(f"{path}/category[{i}]: {_text(cat)!r} is not a CAP category")
    for i, rt in enumerate(fields.get("responseType", []), 1):
        if _text(rt) not in RESPONSE_TYPES:
            raise InvalidAlert(f"{path}/responseType[{i}]: {_text(rt)!r} is not a response type")
    for name in ("eventCode", "parameter"):
        for i, pair in enumerate(fields.get(name, []), 1):
            _sequence(pair, _PAIR, f"{path}/{name}[{i}]")
    for i, res in enumerate(fields.get("resource", []), 1):
        rf = _sequence(res, _RESOURCE, f"{path}/resource[{i}]")
        if "size" in rf and not re.fullmatch(r"[0-9]{1,15}", _text(rf["size"][0])):
            raise InvalidAlert(f"{path}/resource[{i}]/size: not a whole number of bytes")

    def when(name: str) -> datetime | None:
        return _when(fields[name][0], f"{path}/{name}") if name in fields else None

    def opt(name: str) -> str:
        return _text(fields[name][0]) if name in fields else ""

    areas = tuple(_area(a, f"{path}/area[{i}]") for i, a in enumerate(fields.get("area", []), 1))
    return Info(
        language=opt("language") or "en-US",
        categories=tuple(_text(c) for c in fields["category"]),
        event=_required_text(fields, "event", path),
        urgency=_one_of(fields, "urgency", URGENCIES, path),
        severity=_one_of(fields, "severity", SEVERITIES, path),
        certainty=_one_of(fields, "certainty", CERTAINTIES, path),
        headline=opt("headline"),
        description=opt("description"),
        instruction=opt("instruction"),
        effective=when("effective"),
        onset=when("onset"),
        expires=when("expires"),
        sender_name=opt("senderName"),
        areas=areas,
    )


def _area(el: Element, path: str) -> Area:
    fields = _sequence(el, _AREA, path)
    geocodes = []
    for i, g in enumerate(fields.get("geocode", []), 1):
        pair = _sequence(g, _PAIR, f"{path}/geocode[{i}]")
        geocodes.append((_text(pair["valueName"][0]), _text(pair["value"][0])))
    return Area(area_desc=_required_text(fields, "areaDesc", path), geocodes=tuple(geocodes))


def _sequence(
    el: Element, seq: _Seq, path: str, *, allow_other_ns: bool = False
) -> dict[str, list[Element]]:
    """Match the children against a schema sequence; the children by local name."""
    out: dict[str, list[Element]] = {}
    children = list(el)
    pos = 0
    for name, low, high in seq:
        found: list[Element] = []
        while pos < len(children) and children[pos].tag == _NS + name:
            found.append(children[pos])
            pos += 1
        if len(found) < low:
            nxt = f", found {_local(children[pos])!r}" if pos < len(children) else ""
            raise InvalidAlert(f"{path}/{name}: missing (required here{nxt})")
        if high is not None and len(found) > high:
            raise InvalidAlert(f"{path}/{name}: at most {high} allowed")
        if found:
            out[name] = found
    rest = children[pos:]
    if allow_other_ns:
        rest = [c for c in rest if c.tag.startswith(_NS) or not c.tag.startswith("{")]
    if rest:
        name = _local(rest[0])
        known = any(name == n for n, _, _ in seq)
        why = "out of order" if known else "not a CAP 1.2 element here"
        raise InvalidAlert(f"{path}/{name}: {why}")
    return out


def _local(el: Element) -> str:
    tag = el.tag if isinstance(el.tag, str) else "?"
    return tag.rpartition("}")[2]


def _text(el: Element) -> str:
    if len(el):
        raise InvalidAlert(f"{_local(el)}: expected text, found element {_local(el[0])!r}")
    return (el.text or "").strip()


def _required_text(fields: dict[str, list[Element]], name: str, path: str) -> str:
    value = _text(fields[name][0])
    if not value:
        raise InvalidAlert(f"{path}/{name}: empty")
    return value


def _token(fields: dict[str, list[Element]], name: str, path: str) -> str:
    value = _required_text(fields, name, path)
    if not _NO_SPACE.match(value):
        raise InvalidAlert(f"{path}/{name}: must not contain spaces, commas, < or &")
    return value


def _one_of(
    fields: dict[str, list[Element]], name: str, allowed: tuple[str, ...], path: str
) -> str:
    value = _text(fields[name][0])
    if value not in allowed:
        raise InvalidAlert(f"{path}/{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _when(el: Element, path: str) -> datetime:
    value = _text(el)
    if not _DATETIME.match(value):
        raise InvalidAlert(f"{path}: {value!r} is not a CAP date-time (2026-12-01T03:00:00+09:00)")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidAlert(f"{path}: {value!r} is not a real date and time") from None


def _references(text: str) -> tuple[tuple[str, str, str], ...]:
    out = []
    for triple in text.split():
        parts = triple.split(",")
        if len(parts) != 3 or not all(parts):
            raise InvalidAlert(f"alert/references: {triple!r} is not sender,identifier,sent")
        out.append((parts[0], parts[1], parts[2]))
    return tuple(out)

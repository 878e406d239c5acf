"""Where an alert is for: CAP ``area`` blocks → villages of this county's region tree. Pure.

Two ways in, both recorded with what matched and what did not:

* ``geocode`` values against region codes and official administrative codes (``admin_code`` in the
  region file; Korean codes are zero-padded, so ``48820`` and ``4882000000`` name the same county);
* ``areaDesc`` names against the tree: ``경상남도 고성군 하일면``, ``고성군 하일면 학림리``,
  ``고성군``, English names too. A name list such as ``경상남도 고성군 동해면, 삼산면`` carries the
  county on to the names after it; a district name with no county before it is *not* matched,
  because the same 면 name exists in other counties (삼산면 is also in 해남군) and an alert for
  them must never air here. A province or county other than ours ends the match for that phrase
  (강원도 고성군 is not ours).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from devices.targets import RegionNode, RegionTree

from .cap import Area

__all__ = ["AreaMatch", "CountyNames", "match_areas"]

PROVINCES: dict[str, tuple[str, ...]] = {
    "서울특별시": ("Seoul", "서울", "서울시"),
    "부산광역시": ("Busan", "부산", "부산시"),
    "대구광역시": ("Daegu", "대구", "대구시"),
    "인천광역시": ("Incheon", "인천", "인천시"),
    "광주광역시": ("Gwangju", "광주", "광주시"),
    "대전광역시": ("Daejeon", "대전", "대전시"),
    "울산광역시": ("Ulsan", "울산", "울산시"),
    "세종특별자치시": ("Sejong", "세종", "세종시"),
    "경기도": ("Gyeonggi-do", "경기"),
    "강원특별자치도": ("Gangwon-do", "강원", "강원도"),
    "충청북도": ("Chungcheongbuk-do", "충북"),
    "충청남도": ("Chungcheongnam-do", "충남"),
    "전북특별자치도": ("Jeonbuk-do", "전북", "전라북도"),
    "전라남도": ("Jeollanam-do", "전남"),
    "경상북도": ("Gyeongsangbuk-do", "경북"),
    "경상남도": ("Gyeongsangnam-do", "경남"),
    "제주특별자치도": ("Jeju-do", "제주", "제주도"),
}
_PROVINCE_OF = {
    alias.lower(): full for full, aliases in PROVINCES.items() for alias in (full, *aliases)
}
_SPLIT = re.compile(r"\s*(?:,|，|/|·|및|\band\b)\s*")


@dataclass(frozen=True, slots=True)
class CountyNames:
    """The county's own names, for matching ``areaDesc``."""

    code: str
    name_ko: str
    name_en: str = ""
    province_ko: str = ""
    admin_codes: Mapping[str, str] | None = None  # official code → region code


@dataclass(frozen=True, slots=True)
class AreaMatch:
    """The villages an alert's areas name, and an account of each piece that matched or not."""

    villages: frozenset[str]
    matched: tuple[tuple[str, str], ...]  # (what the alert said, region code)
    unmatched: tuple[tuple[str, str], ...]  # (what the alert said, why not)

    def to_json(self) -> dict[str, object]:
        """For storage and the console."""
        return {
            "villages": sorted(self.villages),
            "matched": [{"area": a, "region": r} for a, r in self.matched],
            "unmatched": [{"area": a, "reason": r} for a, r in self.unmatched],
        }


def match_areas(areas: Iterable[Area], tree: RegionTree, county: CountyNames) -> AreaMatch:
    """Every village the areas name (geocodes first, then names), with what matched and what not."""
    villages: set[str] = set()
    matched: list[tuple[str, str]] = []
    unmatched: list[tuple[str, str]] = []
    codes = _code_index(tree, county)
    for area in areas:
        hit = False
        for name, value in area.geocodes:
            region = codes.get(value) or codes.get(_unpad(value))
            if region is None:
                unmatched.append((f"{name}={value}", "no region has this code"))
                continue
            matched.append((f"{name}={value}", region))
            villages |= tree.villages_under(region)
            hit = True
        if hit:
            continue  # the geocodes said it precisely; the description is for people
        for phrase, outcome in _names(area.area_desc, tree, county):
            if outcome.startswith("!"):
                unmatched.append((phrase, outcome[1:]))
            else:
                matched.append((phrase, outcome))
                villages |= tree.villages_under(outcome)
    return AreaMatch(frozenset(villages), tuple(matched), tuple(unmatched))


def _code_index(tree: RegionTree, county: CountyNames) -> dict[str, str]:
    index = {code: code for code in tree.nodes}
    for official, region in (county.admin_codes or {}).items():
        if region in tree.nodes:
            index[official] = region
            index[_unpad(official)] = region
    if county.code in tree.nodes:
        index.setdefault(_unpad(county.code), county.code)
    return index


def _unpad(code: str) -> str:
    return code.rstrip("0") if code.isascii() and code.isdigit() else code


def _names(desc: str, tree: RegionTree, county: CountyNames) -> list[tuple[str, str]]:
    """(phrase, region code) or (phrase, "!reason") for each phrase of an ``areaDesc``."""
    out: list[tuple[str, str]] = []
    ours: bool | None = None  # None: no county named yet in this description
    district: RegionNode | None = None
    for phrase in (p.strip() for p in _SPLIT.split(desc)):
        if not phrase:
            continue
        tokens = phrase.split()
        province = _PROVINCE_OF.get(tokens[0].lower())
        if province is not None:
            tokens = tokens[1:]
            if county.province_ko and province != _PROVINCE_OF.get(county.province_ko.lower(), ""):
                ours, district = False, None
                out.append((phrase, f"!{province} is not this county's province"))
                continue
        if (
            tokens
            and tokens[0].endswith(("군", "시", "-gun", "-si"))
            and not _district(tree, county, tokens[0])
        ):
            if _same(tokens[0], county.name_ko, county.name_en):
                ours, district = True, None
                tokens = tokens[1:]
            else:
                ours, district = False, None
                out.append((phrase, f"!{tokens[0]} is not this county"))
                continue
        if ours is False:
            out.append((phrase, "!follows a place outside this county"))
            continue
        if not tokens:
            out.append((phrase, county.code) if ours else (phrase, "!no place named"))
            continue
        if ours is None:
            out.append((phrase, "!names no county: the same name exists elsewhere in Korea"))
            continue
        found = _district(tree, county, tokens[0])
        if found is not None:
            district = found
            tokens = tokens[1:]
        if not tokens:
            out.append((phrase, district.code if district else "!no place named"))
            continue
        village = _village(tree, county, district, tokens[0])
        if village is None or len(tokens) > 1:
            out.append((phrase, f"!{' '.join(tokens)} is not a place in this county"))
        else:
            out.append((phrase, village))
    return out


def _same(token: str, name_ko: str, name_en: str) -> bool:
    return token == name_ko or (bool(name_en) and token.lower() == name_en.lower())


def _district(tree: RegionTree, county: CountyNames, token: str) -> RegionNode | None:
    for code in tree.nodes.get(county.code, RegionNode(county.code, "county", None)).children:
        node = tree.nodes[code]
        if node.kind == "district" and _same(token, node.name_ko, node.name_en):
            return node
    return None


def _village(
    tree: RegionTree, county: CountyNames, district: RegionNode | None, token: str
) -> str | None:
    pool = tree.villages_under(district.code if district else county.code)
    hits = [v for v in pool if _same(token, tree.nodes[v].name_ko, tree.nodes[v].name_en)]
    return hits[0] if len(hits) == 1 else None

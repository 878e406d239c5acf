"""CAP areas → Goseong's villages: geocodes and names, with and without the province; never another
county's place of the same name."""

from __future__ import annotations

import json

import pytest

from broadcast.alerts.areas import CountyNames, match_areas
from broadcast.alerts.cap import Area
from devices.store import DEMO_REGIONS
from devices.targets import RegionNode, RegionTree


def _goseong() -> tuple[RegionTree, CountyNames, dict[str, list[str]]]:
    data = json.loads(DEMO_REGIONS.read_text(encoding="utf-8"))
    c = data["county"]
    rows = [RegionNode(c["code"], "county", None, c["name_ko"], c["name_en"])]
    villages: dict[str, list[str]] = {}
    for d in data["districts"]:
        rows.append(RegionNode(d["code"], "district", c["code"], d["name_ko"], d["name_en"]))
        villages[d["name_ko"]] = [v["code"] for v in d["villages"]]
        rows += [RegionNode(v["code"], "village", d["code"], v["name_ko"], v["name_en"])
                 for v in d["villages"]]  # fmt: skip
    names = CountyNames(c["code"], c["name_ko"], c["name_en"], c["province_ko"],
                        admin_codes={"4882033000": "hail-myeon"})  # fmt: skip
    return RegionTree.build(rows), names, villages


TREE, COUNTY, BY_DISTRICT = _goseong()
ALL = frozenset(v for vs in BY_DISTRICT.values() for v in vs)


def villages(*districts: str) -> frozenset[str]:
    return frozenset(v for d in districts for v in BY_DISTRICT[d])


@pytest.mark.parametrize(
    ("desc", "expected"),
    [
        ("경상남도 고성군 동해면, 삼산면", villages("동해면", "삼산면")),
        ("경남 고성군 하일면", villages("하일면")),
        ("고성군 하일면", villages("하일면")),
        ("경상남도 고성군", ALL),
        ("고성군", ALL),
        ("고성군 하일면 학림리", frozenset({"hail-myeon-hangnim-ri"})),
        ("고성군 학림리", frozenset({"hail-myeon-hangnim-ri"})),
        ("Gyeongsangnam-do Goseong-gun Donghae-myeon, Samsan-myeon", villages("동해면", "삼산면")),
        ("경상남도 고성군 동해면 및 삼산면", villages("동해면", "삼산면")),
        ("경상남도 고성군 동해면·삼산면·하일면", villages("동해면", "삼산면", "하일면")),
    ],
)
def test_names_match_the_tree(desc: str, expected: frozenset[str]) -> None:
    match = match_areas([Area(desc)], TREE, COUNTY)
    assert match.villages == expected
    assert not match.unmatched


@pytest.mark.parametrize(
    "desc",
    [
        "강원특별자치도 고성군 토성면",  # the other 고성군
        "강원도 고성군",
        "전라남도 해남군 삼산면",  # a 삼산면 that is not ours
        "해남군 삼산면",
        "삼산면",  # no county: the same name exists elsewhere
        "U.S. nationwide and interests worldwide",
    ],
)
def test_places_outside_this_county_never_match(desc: str) -> None:
    match = match_areas([Area(desc)], TREE, COUNTY)
    assert match.villages == frozenset()
    assert match.unmatched
    assert not match.matched


def test_another_county_ends_the_name_list_it_starts() -> None:
    match = match_areas(
        [Area("경상남도 고성군 동해면, 전라남도 해남군 삼산면, 화산면")], TREE, COUNTY
    )
    assert match.villages == villages("동해면")
    assert [a for a, _ in match.unmatched] == ["전라남도 해남군 삼산면", "화산면"]


def test_unknown_place_in_our_county_is_reported() -> None:
    match = match_areas([Area("고성군 동해면, 없는면")], TREE, COUNTY)
    assert match.villages == villages("동해면")
    assert match.unmatched == (("없는면", "!없는면 is not a place in this county"[1:]),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("48820", ALL),  # the county's own code
        ("4882000000", ALL),  # the same, zero-padded as 법정동코드 are
        ("4882033000", villages("하일면")),  # an official admin_code from the region file
        ("hail-myeon-hangnim-ri", frozenset({"hail-myeon-hangnim-ri"})),  # our own codes
    ],
)
def test_geocodes_match_codes(value: str, expected: frozenset[str]) -> None:
    match = match_areas([Area("이름은 무시됩니다", (("ADMIN", value),))], TREE, COUNTY)
    assert match.villages == expected
    assert match.matched == ((f"ADMIN={value}", next(iter(match.matched))[1]),)


def test_unknown_geocode_falls_back_to_nothing_and_says_so() -> None:
    match = match_areas([Area("Los Angeles County", (("SAME", "006037"),))], TREE, COUNTY)
    assert match.villages == frozenset()
    assert match.unmatched[0] == ("SAME=006037", "no region has this code")


def test_several_areas_add_up_and_the_account_is_serializable() -> None:
    match = match_areas([Area("고성군 동해면"), Area("고성군 삼산면")], TREE, COUNTY)
    assert match.villages == villages("동해면", "삼산면")
    out = match.to_json()
    assert out["matched"] == [
        {"area": "고성군 동해면", "region": "donghae-myeon"},
        {"area": "고성군 삼산면", "region": "samsan-myeon"},
    ]

"""Targets parsing, the region tree, and pure target resolution."""

from __future__ import annotations

from typing import Any

import pytest

from devices.errors import InvalidField, UnknownRegion
from devices.targets import RegionNode, RegionTree, Targets, UnknownGroup, resolve_targets

TREE = RegionTree.build(
    [
        RegionNode("C", "county", None, "군", "County"),
        RegionNode("D2", "district", "C"),
        RegionNode("D1", "district", "C"),
        RegionNode("D1a", "village", "D1"),
        RegionNode("D1b", "village", "D1"),
        RegionNode("D2a", "village", "D2"),
        RegionNode("D2b", "village", "D2"),
    ]
)
DEVICES = {"D1a": {1, 2}, "D1b": {3}, "D2a": {4}}  # D2b has no speaker
DEVICE_VILLAGE = {d: v for v, ids in DEVICES.items() for d in ids}
GROUPS = {10: {2, 4}, 11: set(), 12: {99}}  # 99 is revoked: not in DEVICE_VILLAGE


def resolve(targets: Targets) -> tuple[set[str], set[int]]:
    r = resolve_targets(targets, TREE, DEVICES, GROUPS, DEVICE_VILLAGE)
    return set(r.villages), set(r.device_ids)


@pytest.mark.parametrize(
    ("targets", "villages", "devices"),
    [
        (Targets(county=True), {"D1a", "D1b", "D2a", "D2b"}, {1, 2, 3, 4}),
        (Targets(districts=("D1",)), {"D1a", "D1b"}, {1, 2, 3}),
        (Targets(villages=("D2b",)), {"D2b"}, set()),
        (Targets(villages=("D1a",), districts=("D1",)), {"D1a", "D1b"}, {1, 2, 3}),
        (Targets(groups=(10,)), {"D1a", "D2a"}, {1, 2, 4}),
        (Targets(groups=(11,)), set(), set()),
        (Targets(groups=(12,)), set(), set()),
    ],
)
def test_resolution_table(targets: Targets, villages: set[str], devices: set[int]) -> None:
    assert resolve(targets) == (villages, devices)


@pytest.mark.parametrize(
    "targets",
    [Targets(villages=("D1",)), Targets(districts=("D1a",)), Targets(villages=("zz",))],
)
def test_unknown_or_wrong_kind_codes_raise_unknown_region(targets: Targets) -> None:
    with pytest.raises(UnknownRegion):
        resolve(targets)


def test_unknown_group_is_invalid() -> None:
    with pytest.raises(UnknownGroup) as info:
        resolve(Targets(groups=(404,)))
    assert isinstance(info.value, InvalidField)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {},
        {"villages": []},
        {"county": False},
        {"villages": "D1a"},
        {"villages": [1]},
        {"villages": [""]},
        {"villages": ["x" * 65]},
        {"groups": ["1"]},
        {"groups": [True]},
        {"groups": [0]},
        {"county": "yes"},
        {"regions": ["D1a"]},
    ],
)
def test_bad_target_shapes_are_invalid(data: Any) -> None:
    with pytest.raises(InvalidField):
        Targets.from_json(data)


def test_from_json_dedupes_and_round_trips() -> None:
    t = Targets.from_json({"villages": ["D1a", "D1a", "D1b"], "groups": [3, 3]})
    assert t == Targets(villages=("D1a", "D1b"), groups=(3,))
    assert Targets.from_json(t.to_json()) == t


def test_tree_navigation() -> None:
    assert TREE.roots == ("C",)
    assert [n.code for n in TREE.children("C")] == ["D1", "D2"]  # by position, then code
    assert TREE.district_of("D2a") == "D2"
    assert TREE.villages_under("D2a") == {"D2a"}
    assert TREE.is_within("D1b", "C")
    assert not TREE.is_within("D1b", "D2")
    assert TREE.name("C") == "군"
    assert TREE.name("C", "en") == "County"
    assert [n.code for n in TREE.walk()][:3] == ["C", "D1", "D1a"]
    with pytest.raises(UnknownRegion):
        TREE.node("nope")
    with pytest.raises(UnknownRegion):
        TREE.district_of("D1")

"""The policy as a full matrix: every role × every kind and place of region."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from devices import policy
from devices.errors import NotPermitted, UnknownGroup, UnknownRegion
from devices.targets import RegionNode, RegionTree, Targets


@dataclass(frozen=True)
class Staff:
    role: str
    region_code: str


TREE = RegionTree.build(
    [
        RegionNode("C", "county", None),
        RegionNode("D1", "district", "C"),
        RegionNode("D2", "district", "C"),
        RegionNode("D1a", "village", "D1"),
        RegionNode("D1b", "village", "D1"),
        RegionNode("D2a", "village", "D2"),
    ]
)
ADMIN = Staff("admin", "C")
OFFICER = Staff("district", "D1")
HEAD = Staff("village", "D1a")

# region → (admin, district officer of D1, village head of D1a)
MATRIX = {
    "C": (True, False, False),
    "D1": (True, True, False),
    "D2": (True, False, False),
    "D1a": (True, True, True),
    "D1b": (True, True, False),
    "D2a": (True, False, False),
}
CASES = [
    (account, code, allowed)
    for code, row in MATRIX.items()
    for account, allowed in zip((ADMIN, OFFICER, HEAD), row, strict=True)
]


@pytest.mark.parametrize(("account", "code", "allowed"), CASES)
def test_broadcast_and_device_rights_follow_the_matrix(
    account: Staff, code: str, allowed: bool
) -> None:
    region = TREE.node(code)
    assert policy.can_broadcast_to(account, region) is allowed
    assert policy.can_manage_devices(account, region) is allowed
    assert policy.can_approve_listeners(account, region) is allowed
    assert policy.can_see_region(account, region) is allowed


@pytest.mark.parametrize(("account", "allowed"), [(ADMIN, True), (OFFICER, False), (HEAD, False)])
def test_only_admins_send_emergencies_target_the_county_and_manage_accounts(
    account: Staff, allowed: bool
) -> None:
    assert policy.can_send_emergency(account) is allowed
    assert policy.can_target_county(account) is allowed
    assert policy.can_manage_accounts(account) is allowed


def test_visible_regions_are_exactly_the_allowed_column() -> None:
    for index, account in enumerate((ADMIN, OFFICER, HEAD)):
        expected = {code for code, row in MATRIX.items() if row[index]}
        assert policy.visible_regions(account, TREE) == expected


def test_unknown_role_may_do_nothing() -> None:
    ghost = Staff("resident", "D1a")
    assert not any(policy.can_broadcast_to(ghost, n) for n in TREE.walk())
    assert not policy.can_send_emergency(ghost)


def test_village_head_matching_code_of_a_district_gets_nothing() -> None:
    # A village head wrongly bound to a district node must not act on it.
    assert not policy.can_broadcast_to(Staff("village", "D1"), TREE.node("D1"))


def test_policy_accepts_orm_like_regions() -> None:
    @dataclass
    class Row:
        code: str
        kind: str
        parent_code: str | None

    assert policy.can_broadcast_to(OFFICER, Row("D1b", "village", "D1"))
    assert not policy.can_broadcast_to(OFFICER, Row("D2a", "village", "D2"))


def test_check_targets_refuses_the_first_place_out_of_reach() -> None:
    policy.check_targets(OFFICER, Targets(villages=("D1a", "D1b"), districts=("D1",)), TREE)
    with pytest.raises(NotPermitted):
        policy.check_targets(OFFICER, Targets(villages=("D1a", "D2a")), TREE)
    with pytest.raises(NotPermitted):
        policy.check_targets(OFFICER, Targets(county=True), TREE)
    with pytest.raises(UnknownRegion):
        policy.check_targets(OFFICER, Targets(villages=("nowhere",)), TREE)
    policy.check_targets(ADMIN, Targets(county=True), TREE)


def test_check_targets_judges_groups_by_their_region() -> None:
    regions = {1: "D1", 2: "C"}
    policy.check_targets(OFFICER, Targets(groups=(1,)), TREE, regions)
    # a group outside the account's reach answers exactly like a missing one
    missing = pytest.raises(UnknownGroup, match="unknown device group: 3")
    with missing:
        policy.check_targets(OFFICER, Targets(groups=(3,)), TREE, regions)
    for account, gid in ((OFFICER, 2), (HEAD, 1)):
        with pytest.raises(UnknownGroup, match=f"unknown device group: {gid}$"):
            policy.check_targets(account, Targets(groups=(gid,)), TREE, regions)


def test_visibility_is_the_one_rule_of_lists_and_lookups() -> None:
    admin, officer, head = (policy.visibility(a, TREE) for a in (ADMIN, OFFICER, HEAD))
    assert admin.everything
    assert admin.villages is None
    assert officer.villages == {"D1a", "D1b"}
    assert head.villages == {"D1a"}
    for vis, account in ((admin, ADMIN), (officer, OFFICER), (head, HEAD)):
        for code in MATRIX:
            assert vis.sees_region(code) == policy.can_see_region(account, TREE.node(code))
    assert not officer.sees_region(None)
    assert officer.sees_any(["D2a", "D1b"])
    assert not officer.sees_all(["D2a", "D1b"])
    assert officer.sees_all(["D1a", "D1b"])
    # announcements: published, or the account's own, or placed within its regions
    assert not head.sees("C")
    assert head.sees("C", published=True)
    assert policy.visibility(Author(7, "village", "D1a"), TREE).sees("D2", author_id=7)
    assert not head.sees("D2", author_id=7)


@dataclass(frozen=True)
class Author:
    id: int
    role: str
    region_code: str

"""Who may target or manage what: one pure module, tested as a role × region matrix.

Roles are bound to one region node: ``admin`` to the county, ``district`` to a district (읍·면),
``village`` to a village (리). A district officer acts on their district and its villages; a village
head on their own village only; an admin anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .errors import NotPermitted, UnknownGroup
from .targets import RegionLike, RegionTree, Targets

__all__ = [
    "AccountLike",
    "Visibility",
    "can_approve_listeners",
    "can_broadcast_to",
    "can_manage_accounts",
    "can_manage_devices",
    "can_see_region",
    "can_send_emergency",
    "can_target_county",
    "check_targets",
    "visibility",
    "visible_regions",
]


class AccountLike(Protocol):
    """A staff account: an ORM ``Account`` or any value with a role and a region code."""

    @property
    def role(self) -> str: ...
    @property
    def region_code(self) -> str: ...


def _within_scope(account: AccountLike, region: RegionLike) -> bool:
    if account.role == "admin":
        return True
    if account.role == "district":
        return region.code == account.region_code or (
            region.kind == "village" and region.parent_code == account.region_code
        )
    if account.role == "village":
        return region.kind == "village" and region.code == account.region_code
    return False


def can_broadcast_to(account: AccountLike, region: RegionLike) -> bool:
    """Whether the account may send a broadcast to this region."""
    return _within_scope(account, region)


def can_manage_devices(account: AccountLike, region: RegionLike) -> bool:
    """Whether the account may add, remove and group the speaker boxes of this region."""
    return _within_scope(account, region)


def can_approve_listeners(account: AccountLike, region: RegionLike) -> bool:
    """Whether the account may approve, list and revoke the listeners of this region."""
    return _within_scope(account, region)


def can_see_region(account: AccountLike, region: RegionLike) -> bool:
    """Whether the account may see this region's devices, listeners, reports and audit entries."""
    return _within_scope(account, region)


def can_send_emergency(account: AccountLike) -> bool:
    """Whether the account may send ``emergency`` broadcasts (county admins only)."""
    return account.role == "admin"


def can_target_county(account: AccountLike) -> bool:
    """Whether the account may target the whole county (county admins only)."""
    return account.role == "admin"


def can_manage_accounts(account: AccountLike) -> bool:
    """Whether the account may create and list staff accounts (county admins only)."""
    return account.role == "admin"


def visible_regions(account: AccountLike, tree: RegionTree) -> frozenset[str]:
    """The codes of every region the account may act on (what the console's picker offers)."""
    return frozenset(n.code for n in tree.walk() if _within_scope(account, n))


def check_targets(
    account: AccountLike,
    targets: Targets,
    tree: RegionTree,
    group_regions: Mapping[int, str] | None = None,
) -> None:
    """Raise :class:`NotPermitted` unless the account may broadcast to every target.

    Unknown region codes raise ``UnknownRegion`` (the region tree is public). A group is checked
    against the region it belongs to (``group_regions``: group id → region code, every group): a
    group outside the account's reach answers exactly like a missing one (``UnknownGroup``).
    Without ``group_regions``, groups are left to resolution.
    """
    if targets.county and not can_target_county(account):
        raise NotPermitted("only the county office may broadcast to the whole county")
    for code in (*targets.districts, *targets.villages):
        if not can_broadcast_to(account, tree.node(code)):
            raise NotPermitted(f"your account may not broadcast to {code}", region=code)
    if group_regions is None:
        return
    for gid in targets.groups:
        region = group_regions.get(gid)
        if region is None or not can_broadcast_to(account, tree.node(region)):
            raise UnknownGroup(f"unknown device group: {gid}", field="groups")


@dataclass(frozen=True, slots=True)
class Visibility:
    """What one staff account may see: the one rule behind every list and every object lookup.

    ``regions`` and ``villages`` are None for county admins (everything). An object outside the
    account's sight must answer exactly like a missing one: callers raise the same not-found error
    with the same detail (the stores' ``get_*(..., visible=)`` do it for them).
    """

    account_id: int | None
    regions: frozenset[str] | None
    villages: frozenset[str] | None

    @property
    def everything(self) -> bool:
        """Whether the account sees every region (county admins)."""
        return self.regions is None

    def sees_region(self, code: str | None) -> bool:
        """Whether objects placed in this region (device, group, listener, village) are visible."""
        return self.regions is None or (code is not None and code in self.regions)

    def sees_any(self, codes: Iterable[str]) -> bool:
        """Whether any of these regions is visible (a broadcast and its target villages)."""
        return self.regions is None or any(c in self.regions for c in codes)

    def sees_all(self, codes: Iterable[str]) -> bool:
        """Whether every one of these regions is visible (acting on a broadcast: cancel)."""
        return self.regions is None or all(c in self.regions for c in codes)

    def sees(
        self, region_code: str | None, *, author_id: int | None = None, published: bool = False
    ) -> bool:
        """Whether an authored object is visible: published, written by the account, or placed
        in a visible region (announcements: drafts stay within their author's reach)."""
        return (
            published
            or (author_id is not None and author_id == self.account_id)
            or self.sees_region(region_code)
        )


def visibility(account: AccountLike, tree: RegionTree) -> Visibility:
    """The villages (and regions) this account may see, computed once per request."""
    account_id = getattr(account, "id", None)
    if account.role == "admin":
        return Visibility(account_id, None, None)
    regions = visible_regions(account, tree)
    villages = frozenset(c for c in regions if tree.nodes[c].kind == "village")
    return Visibility(account_id, regions, villages)

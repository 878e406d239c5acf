"""Broadcast targets and the region tree, pure: targets → villages and speaker boxes.

A village's speakers all pull the same village channel, so resolving a target yields whole villages:
``device_ids`` are every unrevoked speaker box of every resolved village. A device group targets the
villages of its member speakers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import errors
from .errors import UnknownGroup

__all__ = [
    "RegionLike",
    "RegionNode",
    "RegionTree",
    "Resolution",
    "Targets",
    "UnknownGroup",
    "resolve_targets",
]

TARGET_KEYS = ("county", "districts", "villages", "groups")
MAX_CODE_LEN = 64
MAX_TARGETS = 1000


class RegionLike(Protocol):
    """Anything placed in the tree: an ORM ``Region`` or a :class:`RegionNode`."""

    @property
    def code(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def parent_code(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RegionNode:
    """One node of the region tree, as a value."""

    code: str
    kind: str  # county | district | village
    parent_code: str | None
    name_ko: str = ""
    name_en: str = ""
    children: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegionTree:
    """An immutable view of the region tree: nodes by code, children in order."""

    nodes: Mapping[str, RegionNode]
    roots: tuple[str, ...] = ()

    @classmethod
    def build(cls, regions: Iterable[Any]) -> RegionTree:
        """A tree from region-like rows (``code, kind, parent_code``; names, tags, position)."""
        rows = sorted(regions, key=lambda r: (getattr(r, "position", 0) or 0, r.code))
        children: dict[str, list[str]] = {r.code: [] for r in rows}
        roots: list[str] = []
        for r in rows:
            if r.parent_code is not None and r.parent_code in children:
                children[r.parent_code].append(r.code)
            else:
                roots.append(r.code)
        nodes = {
            r.code: RegionNode(
                code=r.code,
                kind=r.kind,
                parent_code=r.parent_code,
                name_ko=getattr(r, "name_ko", "") or "",
                name_en=getattr(r, "name_en", "") or "",
                children=tuple(children[r.code]),
                tags=tuple(getattr(r, "tags", None) or ()),
            )
            for r in rows
        }
        return cls(nodes=nodes, roots=tuple(roots))

    def __contains__(self, code: object) -> bool:
        return code in self.nodes

    def node(self, code: str) -> RegionNode:
        """The node with this code, or :class:`errors.UnknownRegion`."""
        try:
            return self.nodes[code]
        except (KeyError, TypeError):
            raise errors.UnknownRegion(f"unknown region code: {code!r}") from None

    def village(self, code: str) -> RegionNode:
        """The village with this code, or :class:`errors.UnknownRegion`."""
        node = self.nodes.get(code)
        if node is None or node.kind != "village":
            raise errors.UnknownRegion(f"unknown village code: {code!r}")
        return node

    def district(self, code: str) -> RegionNode:
        """The district with this code, or :class:`errors.UnknownRegion`."""
        node = self.nodes.get(code)
        if node is None or node.kind != "district":
            raise errors.UnknownRegion(f"unknown district code: {code!r}")
        return node

    def children(self, code: str) -> tuple[RegionNode, ...]:
        """The children of a node, in order."""
        return tuple(self.nodes[c] for c in self.node(code).children)

    def villages_under(self, code: str) -> frozenset[str]:
        """Every village at or below this node."""
        out: set[str] = set()
        stack = [self.node(code)]
        while stack:
            node = stack.pop()
            if node.kind == "village":
                out.add(node.code)
            stack.extend(self.nodes[c] for c in node.children)
        return frozenset(out)

    def district_of(self, village: str) -> str:
        """The code of the district a village belongs to."""
        node = self.village(village)
        if node.parent_code is None:
            raise errors.UnknownRegion(f"village {village!r} has no district")
        return node.parent_code

    def ancestors(self, code: str) -> tuple[str, ...]:
        """The codes above a node, nearest first."""
        out: list[str] = []
        node = self.node(code)
        while node.parent_code is not None and node.parent_code in self.nodes:
            out.append(node.parent_code)
            node = self.nodes[node.parent_code]
        return tuple(out)

    def is_within(self, code: str, ancestor: str) -> bool:
        """Whether ``code`` is ``ancestor`` or lies below it."""
        return code == ancestor or ancestor in self.ancestors(code)

    def of_kind(self, kind: str) -> tuple[RegionNode, ...]:
        """Every node of one kind, in tree order."""
        return tuple(n for n in self.walk() if n.kind == kind)

    def walk(self) -> tuple[RegionNode, ...]:
        """Every node, parents before children, in order."""
        out: list[RegionNode] = []
        stack = [self.nodes[c] for c in reversed(self.roots)]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(self.nodes[c] for c in reversed(node.children))
        return tuple(out)

    def name(self, code: str, lang: str = "ko") -> str:
        """A node's name in Korean (default) or English."""
        node = self.node(code)
        return node.name_en if lang == "en" else node.name_ko


def _codes(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise errors.InvalidField(f"targets.{key} must be a list of region codes", field=key)
    if len(value) > MAX_TARGETS:
        raise errors.InvalidField(f"targets.{key} has too many entries", field=key)
    out: list[str] = []
    for code in value:
        if not isinstance(code, str) or not code or len(code) > MAX_CODE_LEN:
            raise errors.InvalidField(f"targets.{key} must hold region codes", field=key)
        if code not in out:
            out.append(code)
    return tuple(out)


def _group_ids(data: Mapping[str, Any]) -> tuple[int, ...]:
    value = data.get("groups") or []
    if not isinstance(value, list) or len(value) > MAX_TARGETS:
        raise errors.InvalidField("targets.groups must be a list of group ids", field="groups")
    out: list[int] = []
    for gid in value:
        if isinstance(gid, bool) or not isinstance(gid, int) or gid < 1:
            raise errors.InvalidField("targets.groups must hold group ids", field="groups")
        if gid not in out:
            out.append(gid)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Targets:
    """Where a broadcast goes: the whole county, districts, villages and device groups."""

    county: bool = False
    districts: tuple[str, ...] = ()
    villages: tuple[str, ...] = ()
    groups: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> Targets:
        """Targets from their JSON object; :class:`errors.InvalidField` for a bad shape or none."""
        if not isinstance(data, Mapping):
            raise errors.InvalidField("targets must be an object", field="targets")
        unknown = sorted(set(data) - set(TARGET_KEYS))
        if unknown:
            raise errors.InvalidField(
                f"unknown target field(s): {', '.join(map(str, unknown))}", field="targets"
            )
        county = data.get("county", False)
        if not isinstance(county, bool):
            raise errors.InvalidField("targets.county must be true or false", field="county")
        targets = cls(
            county=county,
            districts=_codes(data, "districts"),
            villages=_codes(data, "villages"),
            groups=_group_ids(data),
        )
        if targets.is_empty:
            raise errors.InvalidField("targets must name at least one place", field="targets")
        return targets

    @property
    def is_empty(self) -> bool:
        """Whether nothing is targeted."""
        return not (self.county or self.districts or self.villages or self.groups)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of these targets."""
        return {
            "county": self.county,
            "districts": list(self.districts),
            "villages": list(self.villages),
            "groups": list(self.groups),
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    """What targets resolve to: the village channels to play on, the speakers expected to play."""

    villages: frozenset[str] = field(default_factory=frozenset)
    device_ids: frozenset[int] = field(default_factory=frozenset)


def resolve_targets(
    targets: Targets,
    tree: RegionTree,
    devices_by_village: Mapping[str, set[int]],
    group_members: Mapping[int, set[int]],
    device_village: Mapping[int, str],
) -> Resolution:
    """The villages and speaker boxes a target reaches; unknown codes or groups raise."""
    villages: set[str] = set()
    if targets.county:
        for county in tree.of_kind("county"):
            villages |= tree.villages_under(county.code)
    for code in targets.districts:
        villages |= tree.villages_under(tree.district(code).code)
    for code in targets.villages:
        villages.add(tree.village(code).code)
    for gid in targets.groups:
        if gid not in group_members:
            raise UnknownGroup(f"unknown device group: {gid}", field="groups")
        for device_id in group_members[gid]:
            village = device_village.get(device_id)
            if village is not None and village in tree:
                villages.add(village)
    device_ids: set[int] = set()
    for village in villages:
        device_ids |= devices_by_village.get(village, set())
    return Resolution(villages=frozenset(villages), device_ids=frozenset(device_ids))

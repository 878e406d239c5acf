"""SQL of the region tree: import a county, read the tree, per-village settings."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .. import errors
from ..models import (
    Region,
)
from ..targets import RegionTree
from ..village_settings import normalize_tags, parse_quiet_hours

__all__ = [
    "DEMO_REGIONS",
    "admin_codes",
    "child_codes",
    "get_region",
    "get_village",
    "import_regions",
    "import_regions_file",
    "list_regions",
    "load_tree",
    "province_of",
    "update_village_settings",
]


DEMO_REGIONS = Path(__file__).resolve().parent.parent / "data" / "goseong-gun.json"


async def import_regions(session: AsyncSession, tree: dict[str, Any]) -> int:
    """Insert or update a county tree (the shape of ``goseong-gun.json``); returns villages seen."""
    rows = _tree_rows(tree)
    existing = {r.code: r for r in (await session.scalars(select(Region))).all()}
    for code, kind, data, parent, pos in rows:
        region = existing.get(code)
        if region is None:
            region = Region(code=code, kind=kind)
            session.add(region)
            existing[code] = region
        region.kind = kind
        region.name_ko = data["name_ko"]
        region.name_en = data["name_en"]
        region.parent_code = parent
        region.position = pos
        if "tags" in data:
            region.tags = normalize_tags(data["tags"])
        region.admin_code = data.get("admin_code") or region.admin_code
        if kind == "county":
            region.province_ko = data.get("province_ko") or region.province_ko
    await session.flush()
    return sum(1 for row in rows if row[1] == "village")


_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ADMIN_CODE = re.compile(r"^[0-9]{2,20}$")

_Row = tuple[str, str, dict[str, Any], str | None, int]


def _tree_rows(tree: Any) -> list[_Row]:
    """The nodes of a county tree, parents first; :class:`errors.InvalidField` for a bad shape."""

    def node(data: Any, where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise errors.InvalidField(f"{where} must be an object")
        code = data.get("code")
        if not isinstance(code, str) or not _CODE.match(code):
            raise errors.InvalidField(f"{where}: code must be 1–64 ASCII letters, digits, -_.")
        for key in ("name_ko", "name_en"):
            value = data.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= 100:
                raise errors.InvalidField(f"{where} {code}: {key} must be 1–100 characters")
        admin = data.get("admin_code")
        if admin is not None and (not isinstance(admin, str) or not _ADMIN_CODE.match(admin)):
            raise errors.InvalidField(f"{where} {code}: admin_code must be 2–20 ASCII digits")
        province = data.get("province_ko")
        if province is not None and (not isinstance(province, str) or len(province) > 50):
            raise errors.InvalidField(f"{where} {code}: province_ko must be a name")
        return data

    if not isinstance(tree, dict) or not isinstance(tree.get("districts"), list):
        raise errors.InvalidField("a region tree needs a county and a list of districts")
    county = node(tree.get("county"), "county")
    rows: list[_Row] = [(county["code"], "county", county, None, 0)]
    for d_pos, raw in enumerate(tree["districts"]):
        district = node(raw, "district")
        rows.append((district["code"], "district", district, county["code"], d_pos))
        villages = district.get("villages", [])
        if not isinstance(villages, list):
            raise errors.InvalidField(f"district {district['code']}: villages must be a list")
        for v_pos, raw_village in enumerate(villages):
            village = node(raw_village, "village")
            rows.append((village["code"], "village", village, district["code"], v_pos))
    codes = [row[0] for row in rows]
    if len(set(codes)) != len(codes):
        raise errors.InvalidField("region codes must be unique")
    return rows


async def import_regions_file(session: AsyncSession, path: Path) -> int:
    """Load a county tree from a JSON file."""
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        tree = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.InvalidField(f"cannot read {path.name}: {exc}") from None
    return await import_regions(session, tree)


async def get_region(session: AsyncSession, code: str) -> Region:
    """The region with this code, or :class:`errors.UnknownRegion`."""
    region = await session.get(Region, code)
    if region is None:
        raise errors.UnknownRegion(f"unknown region code: {code!r}")
    return region


async def get_village(session: AsyncSession, code: str) -> Region:
    """The village with this code, or :class:`errors.UnknownRegion`."""
    region = await session.get(Region, code)
    if region is None or region.kind != "village":
        raise errors.UnknownRegion(f"unknown village code: {code!r}")
    return region


async def list_regions(session: AsyncSession) -> list[Region]:
    """Every region node, in the tree's order (position, then code)."""
    rows = await session.scalars(select(Region).order_by(Region.position, Region.code))
    return list(rows.all())


async def child_codes(session: AsyncSession, code: str) -> list[str]:
    """The codes of a region's children, in order."""
    rows = await session.scalars(
        select(Region.code).where(Region.parent_code == code).order_by(Region.position, Region.code)
    )
    return list(rows.all())


async def load_tree(session: AsyncSession) -> RegionTree:
    """The whole region tree as an immutable value."""
    return RegionTree.build((await session.scalars(select(Region))).all())


async def update_village_settings(
    session: AsyncSession, code: str, changes: dict[str, Any]
) -> Region:
    """Change a village's settings: ``requires_listener_approval``, ``quiet_hours``, ``tags``."""
    village = await get_village(session, code)
    approval = changes.get("requires_listener_approval", village.requires_listener_approval)
    if not isinstance(approval, bool):
        raise errors.InvalidField(
            "requires_listener_approval must be true or false", field="requires_listener_approval"
        )
    quiet = changes.get("quiet_hours", village.quiet_hours)
    quiet = None if quiet is None else str(parse_quiet_hours(quiet))
    tags = normalize_tags(changes["tags"]) if "tags" in changes else village.tags
    village.requires_listener_approval = approval
    village.quiet_hours = quiet
    village.tags = tags
    await session.flush()
    return village


async def admin_codes(session: AsyncSession) -> dict[str, str]:
    """Official administrative code → region code, for the regions that have one."""
    rows = await session.execute(
        select(Region.admin_code, Region.code).where(Region.admin_code.is_not(None))
    )
    return {admin: code for admin, code in rows.all() if admin}


async def province_of(session: AsyncSession, county_code: str) -> str:
    """The province a county lies in ("" when the region file did not say)."""
    county = await session.get(Region, county_code)
    return (county.province_ko or "") if county is not None else ""

"""SQL access of the registry: regions, accounts, devices, listeners, tokens, audit.

Every function takes an ``AsyncSession`` and leaves committing to the caller unless it says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import errors
from .models import (
    Account,
    ApiToken,
    AuditEntry,
    Device,
    DeviceGroup,
    DeviceGroupMember,
    Listener,
    Region,
)
from .orm import utcnow
from .targets import RegionTree, Resolution, Targets, resolve_targets
from .tokens import hash_password, hash_token, new_token

DEMO_REGIONS = Path(__file__).with_name("data") / "goseong-gun.json"


async def import_regions(session: AsyncSession, tree: dict[str, Any]) -> int:
    """Insert or update a county tree (the shape of ``goseong-gun.json``); returns villages seen."""
    county = tree["county"]
    await _upsert_region(session, county["code"], "county", county, None, 0)
    villages = 0
    for d_pos, district in enumerate(tree["districts"]):
        await _upsert_region(session, district["code"], "district", district, county["code"], d_pos)
        for v_pos, village in enumerate(district.get("villages", [])):
            await _upsert_region(
                session, village["code"], "village", village, district["code"], v_pos
            )
            villages += 1
    return villages


async def import_regions_file(session: AsyncSession, path: Path) -> int:
    """Load a county tree from a JSON file."""
    text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    return await import_regions(session, json.loads(text))


async def _upsert_region(
    session: AsyncSession, code: str, kind: str, data: dict[str, Any], parent: str | None, pos: int
) -> None:
    region = await session.get(Region, code)
    if region is None:
        region = Region(code=code, kind=kind)
        session.add(region)
    region.kind = kind
    region.name_ko = data["name_ko"]
    region.name_en = data["name_en"]
    region.parent_code = parent
    region.position = pos
    if "tags" in data:
        region.tags = list(data["tags"])
    await session.flush()


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


async def create_account(
    session: AsyncSession, username: str, password: str, role: str, region_code: str
) -> Account:
    """A new staff account (role must fit the region's kind)."""
    region = await get_region(session, region_code)
    expected = {"admin": "county", "district": "district", "village": "village"}
    if expected.get(role) != region.kind:
        raise errors.InvalidField(f"role {role!r} needs a {expected.get(role, '?')} region")
    if await session.scalar(select(Account).where(Account.username == username)):
        raise errors.AlreadyExists(f"username {username!r} is taken")
    account = Account(
        username=username, password_hash=hash_password(password), role=role, region_code=region_code
    )
    session.add(account)
    await session.flush()
    return account


@dataclass(frozen=True, slots=True)
class Issued:
    """A newly created row and its token, shown once."""

    id: int
    token: str


async def create_device(session: AsyncSession, village_code: str, name: str) -> Issued:
    """Register a speaker box in a village; returns its id and token (shown once)."""
    await get_village(session, village_code)
    token = new_token("speaker")
    device = Device(
        kind="speaker", village_code=village_code, name=name, token_hash=hash_token(token)
    )
    session.add(device)
    await session.flush()
    return Issued(device.id, token)


async def create_listener(
    session: AsyncSession, village_code: str, nickname: str, consent: bool
) -> tuple[Listener, str]:
    """Register a resident; pending where the village requires the village head's approval."""
    village = await get_village(session, village_code)
    token = new_token("listener")
    now = utcnow()
    listener = Listener(
        village_code=village_code,
        nickname=nickname,
        token_hash=hash_token(token),
        status="pending" if village.requires_listener_approval else "active",
        consent=consent,
        consent_at=now if consent else None,
    )
    session.add(listener)
    await session.flush()
    return listener, token


async def device_by_token(session: AsyncSession, token: str) -> Device | None:
    """The live (not revoked) speaker box holding this token."""
    return await session.scalar(
        select(Device).where(Device.token_hash == hash_token(token), Device.revoked_at.is_(None))
    )


async def listener_by_token(session: AsyncSession, token: str) -> Listener | None:
    """The listener holding this token (any status: callers check ``status``)."""
    return await session.scalar(select(Listener).where(Listener.token_hash == hash_token(token)))


async def account_by_api_token(session: AsyncSession, token: str) -> Account | None:
    """The enabled account owning this unrevoked API token; marks the token used."""
    row = await session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None:
        return None
    account = await session.get(Account, row.account_id)
    if account is None or account.disabled:
        return None
    row.last_used_at = utcnow()
    return account


async def create_api_token(session: AsyncSession, account: Account, name: str) -> Issued:
    """A personal API token for scripts and source clients (shown once)."""
    token = new_token("api")
    row = ApiToken(account_id=account.id, name=name, token_hash=hash_token(token))
    session.add(row)
    await session.flush()
    return Issued(row.id, token)


async def set_presence(
    session: AsyncSession, device_id: int, online: bool, at: datetime, address: str | None = None
) -> None:
    """Record a speaker box going online or offline."""
    device = await session.get(Device, device_id)
    if device is None:
        return
    device.online = online
    device.last_seen = at
    if address is not None:
        device.last_address = address


def audit(
    session: AsyncSession,
    actor: str,
    action: str,
    target: str = "",
    region_code: str | None = None,
    note: str = "",
    **detail: Any,
) -> AuditEntry:
    """Add an audit log entry (committed with the caller's transaction)."""
    entry = AuditEntry(
        actor=actor, action=action, target=target, region_code=region_code, note=note, detail=detail
    )
    session.add(entry)
    return entry


def actor_of(account: Account | None) -> str:
    """How an account appears in the audit log."""
    return "system" if account is None else f"account:{account.id} ({account.username})"


# --- The region tree and target resolution -------------------------------------------------------


async def load_tree(session: AsyncSession) -> RegionTree:
    """The whole region tree as an immutable value."""
    return RegionTree.build((await session.scalars(select(Region))).all())


async def devices_by_village(
    session: AsyncSession, villages: Iterable[str] | None = None
) -> dict[str, set[int]]:
    """The unrevoked speaker boxes of each village (only villages that have one)."""
    query = select(Device.id, Device.village_code).where(Device.revoked_at.is_(None))
    if villages is not None:
        query = query.where(Device.village_code.in_(list(villages)))
    out: dict[str, set[int]] = {}
    for device_id, village in (await session.execute(query)).all():
        out.setdefault(village, set()).add(device_id)
    return out


async def group_members(session: AsyncSession) -> dict[int, set[int]]:
    """The unrevoked member speakers of every device group (empty groups included)."""
    out: dict[int, set[int]] = {gid: set() for gid in await session.scalars(select(DeviceGroup.id))}
    rows = await session.execute(
        select(DeviceGroupMember.group_id, DeviceGroupMember.device_id)
        .join(Device, Device.id == DeviceGroupMember.device_id)
        .where(Device.revoked_at.is_(None))
    )
    for gid, device_id in rows.all():
        out.setdefault(gid, set()).add(device_id)
    return out


async def group_regions(session: AsyncSession) -> dict[int, str]:
    """The region each device group belongs to."""
    rows = await session.execute(select(DeviceGroup.id, DeviceGroup.region_code))
    return {gid: code for gid, code in rows.all()}


async def resolve(session: AsyncSession, targets: Targets) -> Resolution:
    """Resolve targets against the database: the villages and the speaker boxes expected to play."""
    tree = await load_tree(session)
    by_village = await devices_by_village(session)
    device_village = {d: v for v, ids in by_village.items() for d in ids}
    return resolve_targets(targets, tree, by_village, await group_members(session), device_village)


async def listeners_of(session: AsyncSession, village: str) -> list[Listener]:
    """The active listeners registered to a village."""
    rows = await session.scalars(
        select(Listener)
        .where(Listener.village_code == village, Listener.status == "active")
        .order_by(Listener.id)
    )
    return list(rows.all())

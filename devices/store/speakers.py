"""SQL of speaker boxes and device groups, and target resolution against them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .. import errors
from ..models import (
    Device,
    DeviceGroup,
    DeviceGroupMember,
)
from ..orm import utcnow
from ..policy import Visibility
from ..targets import Resolution, Targets, resolve_targets
from ..tokens import hash_token, new_token
from .audit import Issued
from .regions import get_region, get_village, load_tree

__all__ = [
    "add_group_members",
    "create_device",
    "create_group",
    "delete_group",
    "devices_by_village",
    "get_device",
    "get_group",
    "group_members",
    "group_regions",
    "has_devices",
    "list_devices",
    "list_groups",
    "mark_all_offline",
    "members_of",
    "remove_group_member",
    "resolve",
    "revoke_device",
    "set_presence",
    "speaker_counts",
]


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


async def list_devices(
    session: AsyncSession, villages: Iterable[str] | None = None, include_revoked: bool = False
) -> list[Device]:
    """Speaker boxes, optionally of some villages only, by id."""
    query = select(Device).order_by(Device.id)
    if villages is not None:
        query = query.where(Device.village_code.in_(list(villages)))
    if not include_revoked:
        query = query.where(Device.revoked_at.is_(None))
    return list((await session.scalars(query)).all())


async def get_device(
    session: AsyncSession, device_id: int, visible: Visibility | None = None
) -> Device:
    """The unrevoked speaker box with this id, or :class:`errors.UnknownDevice` (also when it is
    outside what ``visible`` sees: an invisible box answers exactly like a missing one)."""
    device = await session.get(Device, device_id)
    if (
        device is None
        or device.revoked_at is not None
        or (visible is not None and not visible.sees_region(device.village_code))
    ):
        raise errors.UnknownDevice(f"no speaker box {device_id}")
    return device


def revoke_device(device: Device) -> None:
    """Revoke a speaker box's token: it can no longer connect."""
    device.revoked_at = utcnow()
    device.online = False


async def speaker_counts(session: AsyncSession) -> dict[tuple[str, bool], int]:
    """Unrevoked speaker boxes by (village, online)."""
    rows = await session.execute(
        select(Device.village_code, Device.online, func.count())
        .where(Device.revoked_at.is_(None))
        .group_by(Device.village_code, Device.online)
    )
    return {(village, bool(online)): int(n) for village, online, n in rows.all()}


async def mark_all_offline(session: AsyncSession) -> None:
    """Mark every box offline (at start: no stream is connected yet, the rest is stale)."""
    await session.execute(update(Device).where(Device.online.is_(True)).values(online=False))


async def has_devices(session: AsyncSession) -> bool:
    """Whether any speaker box was ever registered."""
    return await session.scalar(select(Device.id).limit(1)) is not None


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


async def create_group(
    session: AsyncSession,
    name: str,
    region_code: str,
    device_ids: Iterable[int] = (),
    visible: Visibility | None = None,
) -> DeviceGroup:
    """A named set of speaker boxes within one region."""
    await get_region(session, region_code)
    if await session.scalar(select(DeviceGroup).where(DeviceGroup.name == name)):
        raise errors.AlreadyExists(f"a group named {name!r} exists")
    group = DeviceGroup(name=name, region_code=region_code)
    session.add(group)
    await session.flush()
    await add_group_members(session, group, device_ids, visible)
    return group


async def get_group(
    session: AsyncSession, group_id: int, visible: Visibility | None = None
) -> DeviceGroup:
    """The device group with this id, or :class:`errors.NoSuchGroup` (also when invisible)."""
    group = await session.get(DeviceGroup, group_id)
    if group is None or (visible is not None and not visible.sees_region(group.region_code)):
        raise errors.NoSuchGroup(f"no device group {group_id}")
    return group


async def list_groups(
    session: AsyncSession, visible: Visibility | None = None
) -> list[DeviceGroup]:
    """Device groups (of the regions ``visible`` sees), by id."""
    query = select(DeviceGroup).order_by(DeviceGroup.id)
    if visible is not None and visible.regions is not None:
        query = query.where(DeviceGroup.region_code.in_(sorted(visible.regions)))
    return list((await session.scalars(query)).all())


async def members_of(session: AsyncSession, group_id: int) -> list[int]:
    """The unrevoked member speakers of a group, by id."""
    rows = await session.scalars(
        select(DeviceGroupMember.device_id)
        .join(Device, Device.id == DeviceGroupMember.device_id)
        .where(DeviceGroupMember.group_id == group_id, Device.revoked_at.is_(None))
        .order_by(DeviceGroupMember.device_id)
    )
    return list(rows.all())


async def add_group_members(
    session: AsyncSession,
    group: DeviceGroup,
    device_ids: Iterable[int],
    visible: Visibility | None = None,
) -> None:
    """Add speakers to a group; each must exist (and be visible) and lie within its region."""
    wanted = sorted(set(device_ids))
    if not wanted:
        return
    tree = await load_tree(session)
    present = set(await members_of(session, group.id))
    for device_id in wanted:
        device = await get_device(session, device_id, visible)
        if not tree.is_within(device.village_code, group.region_code):
            raise errors.InvalidField(
                f"speaker box {device_id} is outside the group's region", field="devices"
            )
        if device_id not in present:
            session.add(DeviceGroupMember(group_id=group.id, device_id=device_id))
    await session.flush()


async def remove_group_member(session: AsyncSession, group: DeviceGroup, device_id: int) -> None:
    """Take a speaker out of a group."""
    result = await session.execute(
        delete(DeviceGroupMember).where(
            DeviceGroupMember.group_id == group.id, DeviceGroupMember.device_id == device_id
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise errors.UnknownDevice(f"speaker box {device_id} is not in this group")


async def delete_group(session: AsyncSession, group: DeviceGroup) -> None:
    """Delete a device group (its speakers stay)."""
    await session.execute(delete(DeviceGroupMember).where(DeviceGroupMember.group_id == group.id))
    await session.delete(group)


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

"""SQL access of the registry: regions, accounts, devices, listeners, tokens, audit.

Every function takes an ``AsyncSession`` and leaves committing to the caller unless it says so.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from . import errors
from .models import (
    Account,
    ApiToken,
    AuditEntry,
    Device,
    DeviceGroup,
    DeviceGroupMember,
    Listener,
    LoginSession,
    Region,
)
from .orm import utcnow
from .targets import RegionTree, Resolution, Targets, resolve_targets
from .tokens import hash_password, hash_token, new_token, verify_password
from .village_settings import normalize_tags, parse_quiet_hours, valid_username

MIN_PASSWORD_LEN = 8
DEMO_REGIONS = Path(__file__).with_name("data") / "goseong-gun.json"


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
    await session.flush()
    return sum(1 for row in rows if row[1] == "village")


_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
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


async def create_account(
    session: AsyncSession, username: str, password: str, role: str, region_code: str
) -> Account:
    """A new staff account (role must fit the region's kind)."""
    valid_username(username)
    if len(password) < MIN_PASSWORD_LEN:
        raise errors.InvalidField(
            f"the password must have at least {MIN_PASSWORD_LEN} characters", field="password"
        )
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


# --- Staff: logins, accounts, API tokens ----------------------------------------------------------

# Verified against when the username is unknown, so that both cases cost the same time.
_DUMMY_HASH = hash_password("not a real password, only for timing")


async def authenticate(session: AsyncSession, username: str, password: str) -> Account:
    """The enabled account with this username and password, or :class:`errors.BadCredentials`."""
    account = await session.scalar(select(Account).where(Account.username == username))
    stored = account.password_hash if account is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, stored, password)
    if account is None or account.disabled or not ok:
        raise errors.BadCredentials("wrong username or password")
    return account


async def start_login(
    session: AsyncSession, account: Account, hours: int
) -> tuple[str, LoginSession]:
    """A new console login: the cookie token (shown once) and its row with the CSRF token."""
    token = new_token("session")
    now = utcnow()
    login = LoginSession(
        token_hash=hash_token(token),
        csrf_token=secrets.token_urlsafe(24),
        account_id=account.id,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(login)
    await session.flush()
    return token, login


async def login_of(session: AsyncSession, cookie: str) -> LoginSession | None:
    """The unexpired login holding this cookie token."""
    login = await session.scalar(
        select(LoginSession).where(LoginSession.token_hash == hash_token(cookie))
    )
    if login is None or login.expires_at <= utcnow():
        return None
    return login


async def end_login(session: AsyncSession, cookie: str) -> None:
    """Forget a console login (and every expired one)."""
    await session.execute(
        delete(LoginSession).where(
            (LoginSession.token_hash == hash_token(cookie)) | (LoginSession.expires_at <= utcnow())
        )
    )


async def list_accounts(session: AsyncSession) -> list[Account]:
    """Every staff account, by username."""
    return list((await session.scalars(select(Account).order_by(Account.username))).all())


async def get_account(session: AsyncSession, account_id: int) -> Account:
    """The account with this id, or :class:`errors.UnknownAccount`."""
    account = await session.get(Account, account_id)
    if account is None:
        raise errors.UnknownAccount(f"no account {account_id}")
    return account


async def disable_account(session: AsyncSession, account: Account) -> None:
    """Disable an account and end its logins and API tokens."""
    account.disabled = True
    await session.execute(delete(LoginSession).where(LoginSession.account_id == account.id))
    await session.execute(
        update(ApiToken)
        .where(ApiToken.account_id == account.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def list_api_tokens(session: AsyncSession, account_id: int) -> list[ApiToken]:
    """The unrevoked API tokens of an account, newest first."""
    rows = await session.scalars(
        select(ApiToken)
        .where(ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.id.desc())
    )
    return list(rows.all())


async def revoke_api_token(session: AsyncSession, account_id: int, token_id: int) -> ApiToken:
    """Revoke one of the account's own API tokens."""
    row = await session.get(ApiToken, token_id)
    if row is None or row.account_id != account_id or row.revoked_at is not None:
        raise errors.UnknownToken(f"no API token {token_id} of yours")
    row.revoked_at = utcnow()
    return row


# --- Speaker boxes and groups ---------------------------------------------------------------------


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


async def get_device(session: AsyncSession, device_id: int) -> Device:
    """The unrevoked speaker box with this id, or :class:`errors.UnknownDevice`."""
    device = await session.get(Device, device_id)
    if device is None or device.revoked_at is not None:
        raise errors.UnknownDevice(f"no speaker box {device_id}")
    return device


def revoke_device(device: Device) -> None:
    """Revoke a speaker box's token: it can no longer connect."""
    device.revoked_at = utcnow()
    device.online = False


async def create_group(
    session: AsyncSession, name: str, region_code: str, device_ids: Iterable[int] = ()
) -> DeviceGroup:
    """A named set of speaker boxes within one region."""
    await get_region(session, region_code)
    if await session.scalar(select(DeviceGroup).where(DeviceGroup.name == name)):
        raise errors.AlreadyExists(f"a group named {name!r} exists")
    group = DeviceGroup(name=name, region_code=region_code)
    session.add(group)
    await session.flush()
    await add_group_members(session, group, device_ids)
    return group


async def get_group(session: AsyncSession, group_id: int) -> DeviceGroup:
    """The device group with this id, or :class:`errors.NoSuchGroup`."""
    group = await session.get(DeviceGroup, group_id)
    if group is None:
        raise errors.NoSuchGroup(f"no device group {group_id}")
    return group


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
    session: AsyncSession, group: DeviceGroup, device_ids: Iterable[int]
) -> None:
    """Add speakers to a group; each must exist and lie within the group's region."""
    wanted = sorted(set(device_ids))
    if not wanted:
        return
    tree = await load_tree(session)
    present = set(await members_of(session, group.id))
    for device_id in wanted:
        device = await get_device(session, device_id)
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


# --- Listeners ------------------------------------------------------------------------------------


async def list_listeners(
    session: AsyncSession,
    villages: Iterable[str] | None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Listener], int]:
    """A page of listeners (newest first) and the total."""
    cond: list[ColumnElement[bool]] = []
    if villages is not None:
        cond.append(Listener.village_code.in_(list(villages)))
    if status is not None:
        cond.append(Listener.status == status)
    total = await session.scalar(select(func.count()).select_from(Listener).where(*cond)) or 0
    rows = await session.scalars(
        select(Listener).where(*cond).order_by(Listener.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


async def get_listener(session: AsyncSession, listener_id: int) -> Listener:
    """The listener with this id, or :class:`errors.UnknownListener`."""
    listener = await session.get(Listener, listener_id)
    if listener is None:
        raise errors.UnknownListener(f"no listener {listener_id}")
    return listener


def approve_listener(listener: Listener) -> None:
    """Let a pending listener listen."""
    if listener.status == "revoked":
        raise errors.WrongState("this registration was revoked; register again")
    listener.status = "active"


def revoke_listener(listener: Listener) -> None:
    """Revoke a listener's token."""
    listener.status = "revoked"


# --- Region settings and the audit log -----------------------------------------------------------


async def list_audit(
    session: AsyncSession,
    regions: Iterable[str] | None,
    limit: int = 100,
    offset: int = 0,
    action: str | None = None,
) -> tuple[list[AuditEntry], int]:
    """A page of audit entries (newest first) and the total, optionally within some regions."""
    cond: list[ColumnElement[bool]] = []
    if regions is not None:
        cond.append(AuditEntry.region_code.in_(list(regions)))
    if action:
        cond.append(AuditEntry.action.startswith(action, autoescape=True))
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*cond)) or 0
    rows = await session.scalars(
        select(AuditEntry).where(*cond).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


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

"""Speaker boxes (token shown once, presence) and device groups, within what staff may manage."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from devices import policy, store
from devices.errors import InvalidField, NotPermitted
from devices.models import Device, DeviceGroup
from devices.targets import RegionTree

from . import api_listeners
from .auth import require_account
from .changes import Event, Staff, commit_change, staff_of
from .keys import SESSIONMAKER, SETTINGS
from .openapi import document
from .openapi import json_body as body_spec
from .stream_clients import cut_client
from .validation import iso_time, json_body, path_int, text_field

__all__ = ["device_json", "setup"]

MAX_GROUP_SIZE = 1000
IDS = {"type": "array", "items": {"type": "integer", "minimum": 1}}


def device_json(device: Device, tree: RegionTree | None, tz: str) -> dict[str, Any]:
    """The JSON of a speaker box (never its token)."""
    node = tree.nodes.get(device.village_code) if tree is not None else None
    return {
        "id": device.id,
        "kind": device.kind,
        "village": device.village_code,
        "village_name_ko": node.name_ko if node else None,
        "district": node.parent_code if node else None,
        "name": device.name,
        "online": device.online,
        "last_seen": iso_time(device.last_seen, tz),
        "last_address": device.last_address,
        "created_at": iso_time(device.created_at, tz),
        "revoked": device.revoked_at is not None,
    }


def _may_manage(staff: Staff, code: str) -> None:
    """Regions are public: acting on one outside your reach is a 403 (objects in it are 404s)."""
    if not policy.can_manage_devices(staff.account, staff.tree.node(code)):
        raise NotPermitted(f"your account may not manage speaker boxes in {code}", region=code)


async def _managed_group(session: AsyncSession, staff: Staff, group_id: int) -> DeviceGroup:
    """The device group, if the account sees and manages its region (404 otherwise)."""
    group = await store.get_group(session, group_id, staff.visible)
    _may_manage(staff, group.region_code)
    return group


def _village_filter(request: web.Request, staff: Staff) -> list[str] | None:
    """The villages a list may show: ``?village=`` or ``?district=`` within the account's reach."""
    tree, managed = staff.tree, staff.visible.villages
    if village := request.query.get("village"):
        tree.village(village)
        _may_manage(staff, village)
        return [village]
    if district := request.query.get("district"):
        tree.district(district)
        under = tree.villages_under(district)
        return sorted(under if managed is None else under & managed)
    return None if managed is None else sorted(managed)


@document(
    **body_spec({"village": "string", "name": "string"}, {"kind": {"enum": ["speaker"]}}, 201)
)
async def create_device(request: web.Request) -> web.Response:
    """Add a speaker box to a village; its token is shown once, with its stream URL."""
    await require_account(request)  # 401 before any body check
    data = await json_body(request, ("kind", "village", "name"), ("village", "name"))
    kind = data.get("kind", "speaker")
    if kind != "speaker":
        raise InvalidField("kind must be speaker", field="kind")
    village = text_field(data, "village", max_len=64) or ""
    name = text_field(data, "name", max_len=100) or ""
    settings = request.app[SETTINGS]
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        tree = staff.tree
        tree.village(village)
        _may_manage(staff, village)
        issued = await store.create_device(session, village, name)
        await commit_change(
            request,
            session,
            staff.account,
            "device.add",
            f"device:{issued.id}",
            village,
            event=Event("device.added", {"device_id": issued.id, "village": village}),
            name=name,
        )
        device = await store.get_device(session, issued.id)
    stream = f"{settings.base_url}/live/{village}.mp3"
    body = {
        **device_json(device, tree, settings.timezone),
        "token": issued.token,
        "stream_url": f"{stream}?token={issued.token}",
    }
    return web.json_response(body, status=201, dumps=_dumps)


async def list_devices(request: web.Request) -> web.Response:
    """Speaker boxes the account may manage (``?village=``, ``?district=``), with presence."""
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        villages = _village_filter(request, staff)
        devices = await store.list_devices(session, villages)
    items = [device_json(d, staff.tree, tz) for d in devices]
    return web.json_response({"items": items, "total": len(items)}, dumps=_dumps)


async def get_device(request: web.Request) -> web.Response:
    """One speaker box with its presence."""
    device_id = path_int(request)
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        device = await store.get_device(session, device_id, staff.visible)
    return web.json_response(
        device_json(device, staff.tree, request.app[SETTINGS].timezone), dumps=_dumps
    )


async def delete_device(request: web.Request) -> web.Response:
    """Revoke a speaker box: its token stops working at once."""
    device_id = path_int(request)
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        device = await store.get_device(session, device_id, staff.visible)
        _may_manage(staff, device.village_code)
        store.revoke_device(device)
        await commit_change(
            request,
            session,
            staff.account,
            "device.revoke",
            f"device:{device.id}",
            device.village_code,
            event=Event("device.revoked", {"device_id": device_id, "village": device.village_code}),
            name=device.name,
        )
    await cut_client(request.app, "device", device_id)
    return web.Response(status=204)


def _device_ids(data: dict[str, Any]) -> list[int]:
    value = data.get("devices", [])
    if not isinstance(value, list) or len(value) > MAX_GROUP_SIZE:
        raise InvalidField("devices must be a list of speaker box ids", field="devices")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise InvalidField("devices must be a list of speaker box ids", field="devices")
    return list(value)


async def _group_json(session: Any, group: DeviceGroup, tz: str) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "region": group.region_code,
        "devices": await store.members_of(session, group.id),
        "created_at": iso_time(group.created_at, tz),
    }


@document(**body_spec({"name": "string", "region": "string"}, {"devices": IDS}, 201))
async def create_group(request: web.Request) -> web.Response:
    """Create a device group (e.g. coastal speakers) within a region you manage."""
    await require_account(request)  # 401 before any body check
    data = await json_body(request, ("name", "region", "devices"), ("name", "region"))
    name = text_field(data, "name", max_len=100) or ""
    region = text_field(data, "region", max_len=64) or ""
    devices = _device_ids(data)
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        _may_manage(staff, region)
        group = await store.create_group(session, name, region, devices, staff.visible)
        await commit_change(
            request,
            session,
            staff.account,
            "group.add",
            f"group:{group.id}",
            region,
            name=name,
            devices=devices,
        )
        body = await _group_json(session, group, tz)
    return web.json_response(body, status=201, dumps=_dumps)


async def list_groups(request: web.Request) -> web.Response:
    """Device groups within the account's reach, with their member speakers."""
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        groups = await store.list_groups(session, staff.visible)
        items = [await _group_json(session, g, tz) for g in groups]
    return web.json_response({"items": items, "total": len(items)}, dumps=_dumps)


async def get_group(request: web.Request) -> web.Response:
    """One device group with its member speakers."""
    group_id = path_int(request)
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        group = await store.get_group(session, group_id, staff.visible)
        body = await _group_json(session, group, request.app[SETTINGS].timezone)
    return web.json_response(body, dumps=_dumps)


async def delete_group(request: web.Request) -> web.Response:
    """Delete a device group (its speakers stay)."""
    group_id = path_int(request)
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        group = await _managed_group(session, staff, group_id)
        region, name = group.region_code, group.name
        await store.delete_group(session, group)
        await commit_change(
            request, session, staff.account, "group.delete", f"group:{group_id}", region, name=name
        )
    return web.Response(status=204)


@document(**body_spec({"devices": IDS}))
async def add_members(request: web.Request) -> web.Response:
    """Add speaker boxes to a group; each must lie within the group's region."""
    await require_account(request)  # 401 before any body check
    group_id = path_int(request)
    data = await json_body(request, ("devices",), ("devices",))
    devices = _device_ids(data)
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        group = await _managed_group(session, staff, group_id)
        await store.add_group_members(session, group, devices, staff.visible)
        await commit_change(
            request,
            session,
            staff.account,
            "group.members.add",
            f"group:{group_id}",
            group.region_code,
            devices=devices,
        )
        body = await _group_json(session, group, tz)
    return web.json_response(body, dumps=_dumps)


async def remove_member(request: web.Request) -> web.Response:
    """Take a speaker box out of a group."""
    group_id = path_int(request)
    device_id = path_int(request, "device_id")
    async with request.app[SESSIONMAKER]() as session:
        staff = await staff_of(request, session)
        group = await _managed_group(session, staff, group_id)
        await store.remove_group_member(session, group, device_id)
        await commit_change(
            request,
            session,
            staff.account,
            "group.members.remove",
            f"group:{group_id}",
            group.region_code,
            device=device_id,
        )
    return web.Response(status=204)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def setup(app: web.Application) -> None:
    """Register speaker boxes, device groups and (through api_listeners) listeners."""
    app.router.add_post("/api/v1/devices", create_device)
    app.router.add_get("/api/v1/devices", list_devices)
    app.router.add_get("/api/v1/devices/{id:[0-9]+}", get_device)
    app.router.add_delete("/api/v1/devices/{id:[0-9]+}", delete_device)
    app.router.add_post("/api/v1/groups", create_group)
    app.router.add_get("/api/v1/groups", list_groups)
    app.router.add_get("/api/v1/groups/{id:[0-9]+}", get_group)
    app.router.add_delete("/api/v1/groups/{id:[0-9]+}", delete_group)
    app.router.add_post("/api/v1/groups/{id:[0-9]+}/members", add_members)
    app.router.add_delete("/api/v1/groups/{id:[0-9]+}/members/{device_id:[0-9]+}", remove_member)
    api_listeners.setup(app)

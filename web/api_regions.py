"""The region tree (public: residents pick their village from it) and per-village settings."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devices import policy, store
from devices.errors import NotPermitted
from devices.models import Region

from .auth import require_account
from .changes import Event, commit_change
from .keys import SESSIONMAKER
from .openapi import document
from .openapi import json_body as body_spec
from .validation import json_body

__all__ = ["region_json", "setup"]

SETTINGS_FIELDS = ("requires_listener_approval", "quiet_hours", "tags")


def region_json(region: Region) -> dict[str, Any]:
    """The JSON of one region node (villages with their settings)."""
    out: dict[str, Any] = {
        "code": region.code,
        "kind": region.kind,
        "name_ko": region.name_ko,
        "name_en": region.name_en,
        "parent": region.parent_code,
        "tags": list(region.tags or []),
    }
    if region.kind == "village":
        out["requires_listener_approval"] = region.requires_listener_approval
        out["quiet_hours"] = region.quiet_hours
    return out


async def regions(request: web.Request) -> web.Response:
    """The region tree: county → districts → villages, with names and village settings."""
    async with request.app[SESSIONMAKER]() as session:
        rows = await store.list_regions(session)
    by_parent: dict[str | None, list[Region]] = {}
    for row in rows:
        by_parent.setdefault(row.parent_code, []).append(row)

    def nest(region: Region) -> dict[str, Any]:
        node = region_json(region)
        children = by_parent.get(region.code, [])
        if region.kind == "county":
            node["districts"] = [nest(c) for c in children]
        elif region.kind == "district":
            node["villages"] = [nest(c) for c in children]
        return node

    counties = [nest(r) for r in by_parent.get(None, []) if r.kind == "county"]
    return web.json_response(
        {"county": counties[0] if counties else None, "counties": counties},
        dumps=_dumps,
    )


async def region_detail(request: web.Request) -> web.Response:
    """One region node with its children's codes."""
    code = request.match_info["code"]
    async with request.app[SESSIONMAKER]() as session:
        region = await store.get_region(session, code)
        children = await store.child_codes(session, code)
    return web.json_response({**region_json(region), "children": children}, dumps=_dumps)


@document(
    **body_spec(
        {},
        {
            "requires_listener_approval": "boolean",
            "quiet_hours": {"type": ["string", "null"], "pattern": "^\\d\\d:\\d\\d-\\d\\d:\\d\\d$"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    )
)
async def update_region(request: web.Request) -> web.Response:
    """Change a village's settings: listener approval, quiet hours ("HH:MM-HH:MM"), tags."""
    account = await require_account(request)
    code = request.match_info["code"]
    data = await json_body(request, SETTINGS_FIELDS)
    async with request.app[SESSIONMAKER]() as session:
        region = await store.get_village(session, code)
        if not policy.can_manage_devices(account, region):
            raise NotPermitted(f"your account may not change {code}", region=code)
        before = region_json(region)
        region = await store.update_village_settings(session, code, data)
        after = region_json(region)
        changed = {k: after[k] for k in SETTINGS_FIELDS if before.get(k) != after.get(k)}
        await commit_change(
            request,
            session,
            account,
            "region.update",
            f"region:{code}",
            code,
            event=Event("region.updated", {"village": code, "changes": changed}),
            **changed,
        )
    return web.json_response(after, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def setup(app: web.Application) -> None:
    """Register the region tree routes."""
    app.router.add_get("/api/v1/regions", regions)
    app.router.add_get("/api/v1/regions/{code}", region_detail)
    app.router.add_patch("/api/v1/regions/{code}", update_region)

"""``serve --demo``: Goseong County, demo staff accounts and one demo speaker per district."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from devices import store

DEMO_USERS = (
    ("admin", "admin", "48820"),
    ("goseong-eup", "district", "goseong-eup"),
    ("seongnae", "village", "goseong-eup-seongnae-ri"),
)


@dataclass(slots=True)
class DemoCredentials:
    """What the demo created this time (printed once; nothing when it already existed)."""

    users: list[tuple[str, str, str]] = field(default_factory=list)  # username, role, password
    speakers: list[tuple[str, int, str]] = field(default_factory=list)  # village, id, token


async def load_demo(session: AsyncSession) -> DemoCredentials:
    """Load the region tree and create the demo accounts and speakers that do not exist yet."""
    out = DemoCredentials()
    await store.import_regions_file(session, store.DEMO_REGIONS)
    taken = {a.username for a in await store.list_accounts(session)}
    for username, role, region in DEMO_USERS:
        if username in taken:
            continue
        password = secrets.token_urlsafe(9)
        await store.create_account(session, username, password, role, region)
        out.users.append((username, role, password))
    if not await store.has_devices(session):
        regions = await store.list_regions(session)
        for district in (r for r in regions if r.kind == "district"):
            first = next(
                (r for r in regions if r.parent_code == district.code and r.kind == "village"), None
            )
            if first is None:
                continue
            issued = await store.create_device(session, first.code, f"{first.name_ko} 스피커 1")
            out.speakers.append((first.code, issued.id, issued.token))
    store.audit(session, "cli", "demo.load", detail_users=len(out.users))
    await session.commit()
    return out

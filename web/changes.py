"""Audit + commit + publish, written once: every registry change a handler makes ends here.

The audit entry goes into the same transaction as the change; the console hears of it only once
it is committed (an event about a change that then failed would be a lie).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from devices import policy, store
from devices.models import Account
from devices.targets import RegionTree

from .auth import require_account
from .keys import EVENTS

__all__ = ["Event", "Staff", "commit_change", "staff_of"]


@dataclass(frozen=True, slots=True)
class Event:
    """What the console is told once the change is committed."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


async def commit_change(
    request: web.Request,
    session: AsyncSession,
    actor: Account | str,
    action: str,
    target: str = "",
    region: str | None = None,
    *,
    event: Event | None = None,
    **detail: Any,
) -> None:
    """Audit the change (who, what, where), commit it, then publish its event."""
    who = actor if isinstance(actor, str) else store.actor_of(actor)
    store.audit(session, who, action, target, region, **detail)
    await session.commit()
    if event is not None:
        request.app[EVENTS].publish(event.type, **event.data)


@dataclass(frozen=True, slots=True)
class Staff:
    """The staff member of a request, the region tree and what the member may see."""

    account: Account
    tree: RegionTree
    visible: policy.Visibility


async def staff_of(request: web.Request, session: AsyncSession) -> Staff:
    """The staff member of the request (401 otherwise), with the one visibility rule applied."""
    account = await require_account(request)
    tree = await store.load_tree(session)
    return Staff(account, tree, policy.visibility(account, tree))

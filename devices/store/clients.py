"""The one token → client lookup: speaker boxes, listeners and staff API tokens.

A token's prefix (``vcs_``, ``vcl_``, ``vca_``) names its kind, so a lookup costs one query.
Looking a token up never writes: the caller records a use with :func:`note_api_token_use`, in
its own transaction, and may ignore its failure (a full disk must not refuse every request).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .. import errors
from ..models import Account, ApiToken, Device, Listener
from ..tokens import PREFIXES, hash_token

__all__ = [
    "ALL_KINDS",
    "STREAM_KINDS",
    "TOKEN_USE_INTERVAL",
    "Client",
    "TokenClient",
    "client_by_token",
    "note_api_token_use",
    "revoked_among",
]

Client = Device | Listener | Account

STREAM_KINDS = frozenset({"speaker", "listener"})
ALL_KINDS = frozenset({"speaker", "listener", "api"})

# An API token's ``last_used_at`` is refreshed at most this often.
TOKEN_USE_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class TokenClient:
    """Who holds a token; ``api_token_id`` is set when its ``last_used_at`` is due a refresh."""

    client: Client
    api_token_id: int | None = None


def _kind(token: str) -> str | None:
    return next((kind for kind, prefix in PREFIXES.items() if token.startswith(prefix)), None)


async def client_by_token(
    session: AsyncSession,
    token: str,
    kinds: Collection[str] = ALL_KINDS,
    now: datetime | None = None,
    *,
    pending_ok: bool = False,
) -> TokenClient:
    """The live speaker box, active listener or enabled staff account holding this token.

    :class:`errors.BadToken` for an unknown, revoked or other-kind token (one answer for all);
    :class:`errors.PendingApproval` for a listener still waiting for the village head (unless
    ``pending_ok``: a resident may read and withdraw their own pending registration). With
    ``now``, an API token whose last use is older than :data:`TOKEN_USE_INTERVAL` is flagged.
    """
    kind = _kind(token)
    digest = hash_token(token)
    if kind == "speaker" and kind in kinds:
        device = await session.scalar(
            select(Device).where(Device.token_hash == digest, Device.revoked_at.is_(None))
        )
        if device is not None:
            return TokenClient(device)
    elif kind == "listener" and kind in kinds:
        listener = await session.scalar(select(Listener).where(Listener.token_hash == digest))
        if listener is not None and (
            listener.status == "active" or (pending_ok and listener.status == "pending")
        ):
            return TokenClient(listener)
        if listener is not None and listener.status == "pending":
            raise errors.PendingApproval("the village head has not approved this registration yet")
    elif kind == "api" and kind in kinds:
        row = await session.scalar(
            select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
        )
        account = await session.get(Account, row.account_id) if row is not None else None
        if row is not None and account is not None and not account.disabled:
            due = now is not None and (
                row.last_used_at is None or row.last_used_at <= now - TOKEN_USE_INTERVAL
            )
            return TokenClient(account, row.id if due else None)
    raise errors.BadToken("unknown or revoked token")


async def note_api_token_use(session: AsyncSession, api_token_id: int, now: datetime) -> None:
    """Record an API token's use (at most once per :data:`TOKEN_USE_INTERVAL`); caller commits."""
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == api_token_id,
            or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at <= now - TOKEN_USE_INTERVAL,
            ),
        )
        .values(last_used_at=now)
    )


async def revoked_among(
    session: AsyncSession, device_ids: Collection[int], listener_ids: Collection[int]
) -> tuple[set[int], set[int]]:
    """Which of these boxes and listeners may no longer stream (revoked, deleted, not active)."""
    devices: set[int] = set()
    listeners: set[int] = set()
    if device_ids:
        live = await session.scalars(
            select(Device.id).where(Device.id.in_(list(device_ids)), Device.revoked_at.is_(None))
        )
        devices = set(device_ids) - set(live.all())
    if listener_ids:
        active = await session.scalars(
            select(Listener.id).where(
                Listener.id.in_(list(listener_ids)), Listener.status == "active"
            )
        )
        listeners = set(listener_ids) - set(active.all())
    return devices, listeners

"""The one token → client lookup, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from devices import errors, store
from devices.models import Account, ApiToken, Device, Listener
from devices.orm import utcnow
from devices.store import Issued

VILLAGE = "goseong-eup-seongnae-ri"


async def _holders(db: AsyncSession) -> tuple[Issued, tuple[Listener, str], Account, Issued]:
    """A speaker box, a listener, a staff account and its API token (committed)."""
    box = await store.create_device(db, VILLAGE, "회관")
    listener = await store.create_listener(db, VILLAGE, "박씨", True)
    account = await store.create_account(db, "kim", "long password", "village", VILLAGE)
    api = await store.create_api_token(db, account, "script")
    await db.commit()
    return box, listener, account, api


async def test_each_kind_of_token_finds_its_client(goseong: AsyncSession) -> None:
    db = goseong
    box, (listener, listener_token), _, api = await _holders(db)
    assert isinstance((await store.client_by_token(db, box.token)).client, Device)
    found = (await store.client_by_token(db, listener_token)).client
    assert isinstance(found, Listener)
    assert found.id == listener.id
    assert isinstance((await store.client_by_token(db, api.token)).client, Account)
    # a token of a kind the caller does not take is as unknown as a made-up one
    for token, kinds in ((api.token, store.STREAM_KINDS), (box.token, {"api"})):
        with pytest.raises(errors.BadToken, match="unknown or revoked token"):
            await store.client_by_token(db, token, kinds)
    for token in ("vcs_made-up", "no-prefix", box.token + "x"):
        with pytest.raises(errors.BadToken, match="unknown or revoked token"):
            await store.client_by_token(db, token)


async def test_revoked_pending_and_disabled_holders_are_refused(goseong: AsyncSession) -> None:
    db = goseong
    box, (listener, token), account, api = await _holders(db)
    listener.status = "pending"
    await db.commit()
    with pytest.raises(errors.PendingApproval):
        await store.client_by_token(db, token)
    assert (await store.client_by_token(db, token, pending_ok=True)).client.id == listener.id
    store.revoke_listener(listener)
    store.revoke_device(await store.get_device(db, box.id))
    await store.disable_account(db, account)
    await db.commit()
    for t in (token, box.token, api.token):
        with pytest.raises(errors.BadToken):
            await store.client_by_token(db, t, pending_ok=True)


async def test_an_api_token_use_is_due_once_a_minute(goseong: AsyncSession) -> None:
    db = goseong
    account = await store.create_account(db, "kim", "long password", "village", VILLAGE)
    api = await store.create_api_token(db, account, "script")
    await db.commit()
    now = utcnow()
    assert (await store.client_by_token(db, api.token)).api_token_id is None  # no clock: no flag
    due = await store.client_by_token(db, api.token, now=now)
    assert due.api_token_id == api.id
    await store.note_api_token_use(db, api.id, now)
    await db.commit()
    assert (await store.client_by_token(db, api.token, now=now)).api_token_id is None
    await store.note_api_token_use(db, api.id, now + timedelta(seconds=30))  # throttled
    await db.commit()
    assert await db.scalar(select(ApiToken.last_used_at)) == now
    later = now + store.TOKEN_USE_INTERVAL
    assert (await store.client_by_token(db, api.token, now=later)).api_token_id == api.id

"""Who is calling: staff (session cookie + CSRF, or bearer API token), speaker boxes, listeners.

Every token goes through ``devices.store.client_by_token``; authentication only reads. An API
token's ``last_used_at`` is refreshed at most once a minute, in its own transaction, and a failed
write (a full disk, a read-only database) is logged, never the request's failure.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Collection
from datetime import UTC, datetime

from aiohttp import web

from devices import store
from devices.errors import BadToken, ForbiddenError, PendingApproval
from devices.models import Account, Device, Listener
from devices.tokens import tokens_equal

from .keys import SESSIONMAKER

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "CsrfFailed",
    "PendingApproval",
    "bearer_token",
    "current_account",
    "require_account",
    "stream_client",
    "stream_token",
    "token_client",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "vc_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_ACCOUNT: web.RequestKey[Account | None] = web.RequestKey("vc_account")
_STREAM_CLIENT: web.RequestKey[Device | Listener] = web.RequestKey("vc_stream_client")


class CsrfFailed(ForbiddenError):
    """Missing or wrong CSRF token."""

    title_ko = "보안 토큰(CSRF)이 없거나 올바르지 않습니다"


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def stream_token(request: web.Request) -> str | None:
    """A device or listener token from ``Authorization: Bearer`` or ``?token=``."""
    return bearer_token(request) or request.query.get("token") or None


async def token_client(
    request: web.Request,
    token: str,
    kinds: Collection[str] = store.ALL_KINDS,
    *,
    pending_ok: bool = False,
) -> store.Client:
    """The client holding ``token`` (401/403 otherwise); notes an API token's use, best effort."""
    now = datetime.now(UTC)
    async with request.app[SESSIONMAKER]() as session:
        found = await store.client_by_token(session, token, kinds, now, pending_ok=pending_ok)
    if found.api_token_id is not None:
        await _note_use(request, found.api_token_id, now)
    return found.client


# token id → when writing its use last failed (monotonic), per app: a full disk is not asked
# again at every request (a successful write throttles itself through ``last_used_at``)
_FAILED: weakref.WeakKeyDictionary[web.Application, dict[int, float]] = weakref.WeakKeyDictionary()


async def _note_use(request: web.Request, api_token_id: int, now: datetime) -> None:
    failed = _FAILED.setdefault(request.app, {})
    since = failed.get(api_token_id)
    if since is not None and time.monotonic() - since < store.TOKEN_USE_INTERVAL.total_seconds():
        return
    try:
        async with request.app[SESSIONMAKER]() as session:
            await store.note_api_token_use(session, api_token_id, now)
            await session.commit()
    except Exception as exc:  # a read never depends on a write
        if len(failed) > 10_000:
            failed.clear()
        failed[api_token_id] = time.monotonic()
        log.warning("could not record the use of API token %s: %s", api_token_id, exc)
    else:
        failed.pop(api_token_id, None)


async def current_account(request: web.Request) -> Account | None:
    """The staff account of this request, if any (cookie sessions are CSRF-checked)."""
    if _ACCOUNT in request:
        return request[_ACCOUNT]
    account: Account | None = None
    token = bearer_token(request)
    if token is not None:
        client = await token_client(request, token, {"api"})
        assert isinstance(client, Account)
        account = client
    elif cookie := request.cookies.get(SESSION_COOKIE):
        async with request.app[SESSIONMAKER]() as session:
            login = await store.login_of(session, cookie)
            candidate = await session.get(Account, login.account_id) if login else None
        if login is not None and candidate is not None and not candidate.disabled:
            if request.method not in SAFE_METHODS and not tokens_equal(
                request.headers.get(CSRF_HEADER, ""), login.csrf_token
            ):
                raise CsrfFailed(f"send the {CSRF_HEADER} header from the login response")
            account = candidate
    request[_ACCOUNT] = account
    return account


async def require_account(request: web.Request) -> Account:
    """The staff account of this request, or 401."""
    account = await current_account(request)
    if account is None:
        raise BadToken("log in, or send Authorization: Bearer <API token>")
    return account


async def stream_client(request: web.Request) -> Device | Listener:
    """The speaker box or active listener holding this request's token (401/403 otherwise)."""
    if _STREAM_CLIENT in request:
        return request[_STREAM_CLIENT]
    token = stream_token(request)
    if token is None:
        raise BadToken("send the device or listener token (Authorization: Bearer or ?token=)")
    client = await token_client(request, token, store.STREAM_KINDS)
    assert isinstance(client, Device | Listener)
    request[_STREAM_CLIENT] = client
    return client

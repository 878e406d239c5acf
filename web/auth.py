"""Who is calling: staff (session cookie + CSRF, or bearer API token), speaker boxes, listeners."""

from __future__ import annotations

from aiohttp import web

from devices import store
from devices.errors import BadToken, ForbiddenError
from devices.models import Account, Device, Listener
from devices.tokens import tokens_equal

from .keys import SESSIONMAKER

SESSION_COOKIE = "vc_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_ACCOUNT: web.RequestKey[Account | None] = web.RequestKey("vc_account")
_STREAM_CLIENT: web.RequestKey[Device | Listener] = web.RequestKey("vc_stream_client")


class CsrfFailed(ForbiddenError):
    """Missing or wrong CSRF token."""

    title_ko = "보안 토큰(CSRF)이 없거나 올바르지 않습니다"


class PendingApproval(ForbiddenError):
    """This registration waits for the village head's approval."""

    title_ko = "이장님의 승인을 기다리고 있습니다"


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def current_account(request: web.Request) -> Account | None:
    """The staff account of this request, if any (cookie sessions are CSRF-checked)."""
    if _ACCOUNT in request:
        return request[_ACCOUNT]
    account: Account | None = None
    async with request.app[SESSIONMAKER]() as session:
        token = bearer_token(request)
        if token is not None:
            account = await store.account_by_api_token(session, token)
            await session.commit()
            if account is None:
                raise BadToken("unknown or revoked API token")
        elif cookie := request.cookies.get(SESSION_COOKIE):
            login = await store.login_of(session, cookie)
            if login is not None:
                candidate = await session.get(Account, login.account_id)
                if candidate is not None and not candidate.disabled:
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


def stream_token(request: web.Request) -> str | None:
    """A device or listener token from ``Authorization: Bearer`` or ``?token=``."""
    return bearer_token(request) or request.query.get("token") or None


async def stream_client(request: web.Request) -> Device | Listener:
    """The speaker box or active listener holding this request's token (401/403 otherwise)."""
    if _STREAM_CLIENT in request:
        return request[_STREAM_CLIENT]
    token = stream_token(request)
    if token is None:
        raise BadToken("send the device or listener token (Authorization: Bearer or ?token=)")
    async with request.app[SESSIONMAKER]() as session:
        client: Device | Listener | None = await store.device_by_token(session, token)
        if client is None:
            listener = await store.listener_by_token(session, token)
            if listener is None or listener.status == "revoked":
                raise BadToken("unknown or revoked token")
            if listener.status != "active":
                raise PendingApproval("the village head has not approved this registration yet")
            client = listener
    request[_STREAM_CLIENT] = client
    return client

"""Staff: log in and out, personal API tokens, accounts (admins), and the audit log."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from devices import policy, store
from devices.errors import BadCredentials, InvalidField, NotPermitted
from devices.models import Account, ApiToken, AuditEntry

from .auth import SESSION_COOKIE, current_account, require_account
from .changes import commit_change
from .keys import SESSIONMAKER, SETTINGS
from .openapi import document
from .openapi import json_body as body_spec
from .ratelimit import LOGIN_GUARD, LoginGuard
from .validation import iso_time, json_body, page, page_params, path_int, text_field

__all__ = ["account_json", "setup"]

MAX_PASSWORD_LEN = 1024
ROLE = {"enum": ["admin", "district", "village"]}


def account_json(account: Account, tz: str) -> dict[str, Any]:
    """The JSON of a staff account (never its password hash)."""
    region = account.region
    return {
        "id": account.id,
        "username": account.username,
        "display_name": account.display_name,
        "role": account.role,
        "region": {
            "code": region.code,
            "kind": region.kind,
            "name_ko": region.name_ko,
            "name_en": region.name_en,
        },
        "disabled": account.disabled,
        "created_at": iso_time(account.created_at, tz),
    }


def _token_json(row: ApiToken, tz: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": iso_time(row.created_at, tz),
        "last_used_at": iso_time(row.last_used_at, tz),
    }


def _audit_json(entry: AuditEntry, tz: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso_time(entry.at, tz),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "region": entry.region_code,
        "detail": entry.detail,
        "note": entry.note,
    }


def _password(data: dict[str, Any]) -> str:
    value = data.get("password")
    if not isinstance(value, str) or not value or len(value) > MAX_PASSWORD_LEN:
        raise InvalidField("password must be a non-empty string", field="password")
    return value


@document(**body_spec({"username": "string", "password": "string"}))
async def login(request: web.Request) -> web.Response:
    """Log in with username and password: sets the session cookie, returns the CSRF token."""
    data = await json_body(request, ("username", "password"), ("username", "password"))
    username = text_field(data, "username", max_len=64) or ""
    password = _password(data)
    settings = request.app[SETTINGS]
    guard = request.app[LOGIN_GUARD]
    pair = guard.admit(username, request.remote or "?")
    await asyncio.sleep(guard.delay_s(username))  # a username under attack: slower, never locked
    async with guard.hashing_slot(), request.app[SESSIONMAKER]() as session:
        try:
            account = await store.authenticate(session, username, password)
        except BadCredentials:
            guard.failed(username)
            raise
        cookie, login_row = await store.start_login(session, account, settings.session_hours)
        await session.commit()
    guard.succeeded(pair)
    response = web.json_response(
        {
            "account": account_json(account, settings.timezone),
            "csrf_token": login_row.csrf_token,
            "expires_at": iso_time(login_row.expires_at, settings.timezone),
        }
    )
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
        max_age=settings.session_hours * 3600,
        path="/",
    )
    return response


async def whoami(request: web.Request) -> web.Response:
    """The logged-in account (role, region) and, for cookie logins, the CSRF token."""
    account = await require_account(request)
    settings = request.app[SETTINGS]
    body: dict[str, Any] = {"account": account_json(account, settings.timezone)}
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with request.app[SESSIONMAKER]() as session:
            login_row = await store.login_of(session, cookie)
        if login_row is not None and login_row.account_id == account.id:
            body["csrf_token"] = login_row.csrf_token
            body["expires_at"] = iso_time(login_row.expires_at, settings.timezone)
    return web.json_response(body)


async def logout(request: web.Request) -> web.Response:
    """Log out: forget the session and clear its cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await current_account(request)  # checks the CSRF token of a live session
        async with request.app[SESSIONMAKER]() as session:
            await store.end_login(session, cookie)
            await session.commit()
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@document(**body_spec({"name": "string"}, status=201))
async def create_token(request: web.Request) -> web.Response:
    """Create a personal API token for scripts and source clients (shown once)."""
    account = await require_account(request)
    data = await json_body(request, ("name",), ("name",))
    name = text_field(data, "name", max_len=100) or ""
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        issued = await store.create_api_token(session, account, name)
        row = await store.get_api_token(session, account.id, issued.id)
        await commit_change(request, session, account, "token.add", f"token:{issued.id}", name=name)
    return web.json_response({**_token_json(row, tz), "token": issued.token}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    """Your unrevoked API tokens (never the tokens themselves)."""
    account = await require_account(request)
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        rows = await store.list_api_tokens(session, account.id)
    return web.json_response({"items": [_token_json(r, tz) for r in rows]})


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke one of your API tokens."""
    account = await require_account(request)
    token_id = path_int(request)
    async with request.app[SESSIONMAKER]() as session:
        await store.revoke_api_token(session, account.id, token_id)
        await commit_change(request, session, account, "token.revoke", f"token:{token_id}")
    return web.Response(status=204)


async def _require_admin(request: web.Request) -> Account:
    account = await require_account(request)
    if not policy.can_manage_accounts(account):
        raise NotPermitted("only county admins manage staff accounts")
    return account


@document(
    **body_spec(
        {"username": "string", "password": "string", "role": ROLE, "region": "string"},
        {"display_name": "string"},
        status=201,
    )
)
async def create_user(request: web.Request) -> web.Response:
    """Create a staff account bound to a region (admins only)."""
    admin = await _require_admin(request)
    data = await json_body(
        request,
        ("username", "password", "role", "region", "display_name"),
        ("username", "password", "role", "region"),
    )
    username = text_field(data, "username", max_len=64) or ""
    password = _password(data)
    role = text_field(data, "role", max_len=16) or ""
    region = text_field(data, "region", max_len=64) or ""
    display = text_field(data, "display_name", max_len=100, required=False, min_len=0) or ""
    if role not in ("admin", "district", "village"):
        raise InvalidField("role must be admin, district or village", field="role")
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        account = await store.create_account(session, username, password, role, region)
        account.display_name = display
        await commit_change(
            request,
            session,
            admin,
            "account.add",
            f"account:{account.id}",
            region,
            username=username,
            role=role,
        )
        await session.refresh(account, ["region"])
    return web.json_response(account_json(account, tz), status=201)


async def list_users(request: web.Request) -> web.Response:
    """Every staff account (admins only)."""
    await _require_admin(request)
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        accounts = await store.list_accounts(session)
    return web.json_response({"items": [account_json(a, tz) for a in accounts]})


async def disable_user(request: web.Request) -> web.Response:
    """Disable a staff account and end its logins and API tokens (admins only)."""
    admin = await _require_admin(request)
    account_id = path_int(request)
    if account_id == admin.id:
        raise NotPermitted("you cannot disable your own account")
    async with request.app[SESSIONMAKER]() as session:
        account = await store.get_account(session, account_id)
        await store.disable_account(session, account)
        await commit_change(
            request,
            session,
            admin,
            "account.disable",
            f"account:{account.id}",
            account.region_code,
            username=account.username,
        )
    return web.Response(status=204)


async def audit_log(request: web.Request) -> web.Response:
    """The audit log, newest first: admins see everything, others their own region."""
    account = await require_account(request)
    limit, offset = page_params(request)
    action = request.query.get("action") or None
    if action is not None and len(action) > 64:
        raise InvalidField("action is too long", field="action")
    tz = request.app[SETTINGS].timezone
    async with request.app[SESSIONMAKER]() as session:
        regions = policy.visibility(account, await store.load_tree(session)).regions
        rows, total = await store.list_audit(session, regions, limit, offset, action)
    return web.json_response(page([_audit_json(e, tz) for e in rows], total, limit, offset))


def setup(app: web.Application) -> None:
    """Register sessions, tokens, users and the audit log."""
    settings = app[SETTINGS]
    app[LOGIN_GUARD] = LoginGuard(
        settings.login_attempts_per_min,
        settings.login_attempts_per_address_per_min,
        settings.login_hash_concurrency,
    )
    app.router.add_post("/api/v1/session", login)
    app.router.add_get("/api/v1/session", whoami)
    app.router.add_delete("/api/v1/session", logout)
    app.router.add_post("/api/v1/tokens", create_token)
    app.router.add_get("/api/v1/tokens", list_tokens)
    app.router.add_delete("/api/v1/tokens/{id:[0-9]+}", revoke_token)
    app.router.add_post("/api/v1/users", create_user)
    app.router.add_get("/api/v1/users", list_users)
    app.router.add_delete("/api/v1/users/{id:[0-9]+}", disable_user)
    app.router.add_get("/api/v1/audit", audit_log)

"""SQL of staff: accounts, console logins, personal API tokens."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .. import errors
from ..models import (
    Account,
    ApiToken,
    LoginSession,
)
from ..orm import utcnow
from ..tokens import hash_password, hash_token, new_token, verify_password
from ..village_settings import valid_username
from .audit import Issued
from .clients import client_by_token
from .regions import get_region

__all__ = [
    "MIN_PASSWORD_LEN",
    "account_by_api_token",
    "authenticate",
    "create_account",
    "create_api_token",
    "disable_account",
    "end_login",
    "get_account",
    "get_api_token",
    "list_accounts",
    "list_api_tokens",
    "login_of",
    "revoke_api_token",
    "start_login",
]


MIN_PASSWORD_LEN = 8

# Verified against when the username is unknown, so that both cases cost the same time.
_DUMMY_HASH = hash_password("not a real password, only for timing")


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


async def account_by_api_token(session: AsyncSession, token: str) -> Account | None:
    """The enabled account owning this unrevoked API token (reads only; see ``clients``)."""
    try:
        found = await client_by_token(session, token, {"api"})
    except errors.BadToken:
        return None
    assert isinstance(found.client, Account)
    return found.client


async def create_api_token(session: AsyncSession, account: Account, name: str) -> Issued:
    """A personal API token for scripts and source clients (shown once)."""
    token = new_token("api")
    row = ApiToken(account_id=account.id, name=name, token_hash=hash_token(token))
    session.add(row)
    await session.flush()
    return Issued(row.id, token)


async def list_api_tokens(session: AsyncSession, account_id: int) -> list[ApiToken]:
    """The unrevoked API tokens of an account, newest first."""
    rows = await session.scalars(
        select(ApiToken)
        .where(ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.id.desc())
    )
    return list(rows.all())


async def get_api_token(session: AsyncSession, account_id: int, token_id: int) -> ApiToken:
    """One of the account's own unrevoked API tokens, or :class:`errors.UnknownToken`."""
    row = await session.get(ApiToken, token_id)
    if row is None or row.account_id != account_id or row.revoked_at is not None:
        raise errors.UnknownToken(f"no API token {token_id} of yours")
    return row


async def revoke_api_token(session: AsyncSession, account_id: int, token_id: int) -> ApiToken:
    """Revoke one of the account's own API tokens."""
    row = await get_api_token(session, account_id, token_id)
    row.revoked_at = utcnow()
    return row

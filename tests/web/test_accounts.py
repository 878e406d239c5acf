"""Log in and out (cookie + CSRF), login rate limit, API tokens, staff accounts, the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from devices.models import ApiToken
from web.keys import SESSIONMAKER
from web.settings import Settings

from .foundation_helpers import PASSWORD, add_account, app_client, login


async def test_cookie_login_whoami_csrf_and_logout(client: Any) -> None:
    await add_account(client, "kim", "district", "goseong-eup")
    resp = await client.post("/api/v1/session", json={"username": "kim", "password": PASSWORD})
    assert resp.status == 200
    body = await resp.json()
    cookie = resp.headers["Set-Cookie"]
    assert "vc_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert body["account"]["role"] == "district"
    assert body["account"]["region"]["code"] == "goseong-eup"
    csrf = {"X-CSRF-Token": body["csrf_token"]}

    me = await (await client.get("/api/v1/session")).json()
    assert me["account"]["username"] == "kim"
    assert me["csrf_token"] == body["csrf_token"]

    no_csrf = await client.post("/api/v1/tokens", json={"name": "script"})
    assert no_csrf.status == 403
    assert no_csrf.content_type == "application/problem+json"
    ok = await client.post("/api/v1/tokens", json={"name": "script"}, headers=csrf)
    assert ok.status == 201

    assert (await client.delete("/api/v1/session", headers=csrf)).status == 204
    assert (await client.get("/api/v1/session")).status == 401


async def test_secure_cookies_setting_marks_the_cookie_secure(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings.replace(secure_cookies=True))
    await add_account(client, "lee", "admin", "48820")
    resp = await client.post("/api/v1/session", json={"username": "lee", "password": PASSWORD})
    assert "Secure" in resp.headers["Set-Cookie"]


@pytest.mark.parametrize("username", ["kim", "nobody"])
async def test_wrong_password_or_unknown_user_is_the_same_401_problem(
    client: Any, username: str
) -> None:
    await add_account(client, "kim", "admin", "48820")
    resp = await client.post(
        "/api/v1/session",
        json={"username": username, "password": "wrong password"},
        headers={"Accept-Language": "en"},
    )
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["title"] == "Wrong username or password."
    assert body["detail"] == "wrong username or password"
    assert "vc_session" not in resp.headers.get("Set-Cookie", "")


async def test_login_is_rate_limited_per_username_and_address(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings.replace(login_attempts_per_min=3))
    await add_account(client, "park", "admin", "48820")
    await add_account(client, "choi", "admin", "48820")
    wrong = {"username": "park", "password": "guess"}
    for _ in range(3):
        assert (await client.post("/api/v1/session", json=wrong)).status == 401
    limited = await client.post("/api/v1/session", json=wrong)
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Even the right password waits now; another username does not.
    right = {"username": "park", "password": PASSWORD}
    assert (await client.post("/api/v1/session", json=right)).status == 429
    await login(client, "choi")


async def test_successful_login_forgets_earlier_failures(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings.replace(login_attempts_per_min=2))
    await add_account(client, "han", "admin", "48820")
    wrong = {"username": "han", "password": "guess"}
    assert (await client.post("/api/v1/session", json=wrong)).status == 401
    await login(client, "han")
    assert (await client.post("/api/v1/session", json=wrong)).status == 401
    assert (await client.post("/api/v1/session", json=wrong)).status == 401
    assert (await client.post("/api/v1/session", json=wrong)).status == 429


async def test_api_tokens_are_hashed_listed_without_secret_and_revocable(
    client: Any, admin_headers: dict[str, str]
) -> None:
    resp = await client.post("/api/v1/tokens", json={"name": "ffmpeg"}, headers=admin_headers)
    assert resp.status == 201
    issued = await resp.json()
    token = issued["token"]
    assert token.startswith("vca_")
    assert len(token) >= 40
    async with client.app[SESSIONMAKER]() as session:
        hashes = (await session.scalars(select(ApiToken.token_hash))).all()
    assert all(token not in h for h in hashes)

    mine = {"Authorization": f"Bearer {token}"}
    listed = await (await client.get("/api/v1/tokens", headers=mine)).json()
    assert {t["name"] for t in listed["items"]} == {"test", "ffmpeg"}
    assert all("token" not in t for t in listed["items"])

    assert (await client.delete(f"/api/v1/tokens/{issued['id']}", headers=mine)).status == 204
    gone = await client.get("/api/v1/session", headers=mine)
    assert gone.status == 401
    assert gone.headers["WWW-Authenticate"].startswith("Bearer")
    # Revoking twice, or someone else's token, is a 404.
    again = await client.delete(f"/api/v1/tokens/{issued['id']}", headers=admin_headers)
    assert again.status == 404


async def test_admin_creates_region_bound_staff_who_can_log_in(
    client: Any, admin_headers: dict[str, str]
) -> None:
    new = {
        "username": "seongnae-head",
        "password": "long enough",
        "role": "village",
        "region": "goseong-eup-seongnae-ri",
        "display_name": "성내리 이장",
    }
    resp = await client.post("/api/v1/users", json=new, headers=admin_headers)
    assert resp.status == 201
    body = await resp.json()
    assert body["role"] == "village"
    assert body["region"]["name_ko"] == "성내리"
    assert "password" not in body
    assert "password_hash" not in body
    users = await (await client.get("/api/v1/users", headers=admin_headers)).json()
    assert "seongnae-head" in {u["username"] for u in users["items"]}
    await login(client, "seongnae-head", "long enough")
    dup = await client.post("/api/v1/users", json=new, headers=admin_headers)
    assert dup.status == 409


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"role": "district", "region": "goseong-eup-seongnae-ri"}, 422),
        ({"role": "village", "region": "goseong-eup"}, 422),
        ({"role": "king"}, 422),
        ({"region": "nowhere"}, 404),
        ({"username": "Bad Name!"}, 422),
        ({"username": "ab"}, 422),
        ({"password": "short"}, 422),
        ({"password": 12345678}, 422),
    ],
)
async def test_bad_new_accounts_are_refused(
    client: Any, admin_headers: dict[str, str], change: dict[str, Any], status: int
) -> None:
    new = {"username": "newbie", "password": "long enough", "role": "admin", "region": "48820"}
    resp = await client.post("/api/v1/users", json={**new, **change}, headers=admin_headers)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    users = await (await client.get("/api/v1/users", headers=admin_headers)).json()
    assert "newbie" not in {u["username"] for u in users["items"]}


async def test_only_admins_manage_accounts(client: Any, make_staff: Any) -> None:
    officer = await make_staff("district", "goseong-eup")
    new = {"username": "x-user", "password": "long enough", "role": "admin", "region": "48820"}
    assert (await client.post("/api/v1/users", json=new, headers=officer)).status == 403
    assert (await client.get("/api/v1/users", headers=officer)).status == 403
    assert (await client.get("/api/v1/users")).status == 401


async def test_disabled_account_cannot_log_in_and_its_tokens_stop(
    client: Any, admin_headers: dict[str, str], make_staff: Any
) -> None:
    officer = await make_staff("district", "goseong-eup")
    me = await (await client.get("/api/v1/session", headers=officer)).json()
    account_id = me["account"]["id"]
    assert (await client.delete(f"/api/v1/users/{account_id}", headers=admin_headers)).status == 204
    assert (await client.get("/api/v1/session", headers=officer)).status == 401
    resp = await client.post(
        "/api/v1/session", json={"username": me["account"]["username"], "password": PASSWORD}
    )
    assert resp.status == 401


async def test_audit_log_is_paged_and_scoped_to_the_region(
    client: Any, admin_headers: dict[str, str], make_staff: Any
) -> None:
    officer = await make_staff("district", "goseong-eup")
    for name in ("a", "b", "c"):
        body = {"village": "goseong-eup-seongnae-ri", "name": name}
        assert (await client.post("/api/v1/devices", json=body, headers=officer)).status == 201
    villages = (await (await client.get("/api/v1/regions")).json())["county"]["districts"][1]
    far = villages["villages"][0]["code"]
    resp = await client.post(
        "/api/v1/devices", json={"village": far, "name": "far"}, headers=admin_headers
    )
    assert resp.status == 201

    everything = await (await client.get("/api/v1/audit?limit=2", headers=admin_headers)).json()
    assert everything["total"] == 4
    assert len(everything["items"]) == 2
    assert everything["items"][0]["action"] == "device.add"
    assert everything["items"][0]["region"] == far  # newest first
    rest = await (await client.get("/api/v1/audit?limit=2&offset=2", headers=admin_headers)).json()
    assert len(rest["items"]) == 2

    mine = await (await client.get("/api/v1/audit", headers=officer)).json()
    assert mine["total"] == 3
    assert {e["region"] for e in mine["items"]} == {"goseong-eup-seongnae-ri"}
    assert mine["items"][0]["actor"].startswith("account:")
    bad = await client.get("/api/v1/audit?limit=0", headers=admin_headers)
    assert bad.status == 422

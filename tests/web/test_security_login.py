"""#11.6: a login flood costs a bounded number of password hashes; a lockout cannot be targeted."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from typing import Any

import pytest

from web.ratelimit import LOGIN_GUARD, client_address, parse_networks
from web.settings import Settings

from .foundation_helpers import PASSWORD, add_account, app_client

SESSION = "/api/v1/session"


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    nets = parse_networks("10.0.0.0/8, 127.0.0.1")
    assert client_address("127.0.0.1", "203.0.113.9", nets) == "203.0.113.9"
    # a client's own (spoofed) entries left of the real one are ignored
    assert client_address("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.0.0.2", nets) == "203.0.113.9"
    assert client_address("198.51.100.7", "203.0.113.9", nets) == "198.51.100.7"  # untrusted peer
    assert client_address("127.0.0.1", "garbage", nets) == "127.0.0.1"
    assert client_address("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"  # none configured
    with pytest.raises(ValueError, match="nonsense"):
        parse_networks("10.0.0.0/8,nonsense")


async def test_a_bad_trusted_proxies_setting_stops_the_app(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    from web.app import create_app
    from web.settings import SettingsError

    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        create_app(Settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/33"))


async def test_random_usernames_from_one_address_are_limited_without_hashing(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(
        aiohttp_client, settings.replace(login_attempts_per_address_per_min=5)
    )
    statuses = []
    for _ in range(20):
        body = {"username": f"nobody{secrets.token_hex(4)}", "password": "guess"}
        statuses.append((await client.post(SESSION, json=body)).status)
    assert statuses == [401] * 5 + [429] * 15
    resp = await client.post(SESSION, json={"username": "someone", "password": "x"})
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60


async def test_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_limit(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(
        aiohttp_client, settings.replace(login_attempts_per_address_per_min=3)
    )
    statuses = []
    for i in range(6):
        body = {"username": f"nobody{i}", "password": "guess"}
        statuses.append(
            (await client.post(SESSION, json=body, headers=_from(f"10.1.1.{i}"))).status
        )
    assert statuses == [401] * 3 + [429] * 3


async def test_an_attacker_cannot_lock_the_admin_out(
    aiohttp_client: Any, settings: Settings
) -> None:
    """Ten bad passwords from one address locked the admin out in 0.1 (behind a proxy: everyone)."""
    client = await app_client(aiohttp_client, settings.replace(trusted_proxies="127.0.0.1/32"))
    await add_account(client, "admin1", "admin", "48820")
    wrong = {"username": "admin1", "password": "guess"}

    async def attempt(address: str) -> int:
        return int((await client.post(SESSION, json=wrong, headers=_from(address))).status)

    # from 20 addresses at once, each within its own limits, and 15 from the attacker's own
    attacker = await asyncio.gather(*(attempt(f"198.51.100.{i + 1}") for i in range(20)))
    attacker += [await attempt("203.0.113.66") for _ in range(12)]
    assert attacker[-1] == 429  # the attacker's own address is limited
    assert set(attacker) <= {401, 429}
    started = time.monotonic()
    right = {"username": "admin1", "password": PASSWORD}
    resp = await client.post(SESSION, json=right, headers=_from("192.0.2.10"))
    assert resp.status == 200, await resp.text()
    assert time.monotonic() - started < 5  # a soft delay at most, never a lock


@pytest.mark.slow
async def test_sixteen_flooders_keep_the_dashboard_answering(
    aiohttp_client: Any, settings: Settings
) -> None:
    """16 concurrent flooders with random usernames from 16 addresses: hashing stays bounded."""
    settings = settings.replace(
        trusted_proxies="127.0.0.1/32", login_attempts_per_address_per_min=2
    )
    app = await app_client(aiohttp_client, settings)
    headers = await _staff_token(app)

    async def dashboard_ms(n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            assert (await app.get("/api/v1/dashboard", headers=headers)).status == 200
            out.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.05)
        return out

    quiet = await dashboard_ms(20)
    stop = asyncio.Event()
    counts = {"401": 0, "429": 0}

    async def flood(i: int) -> None:
        while not stop.is_set():
            body = {"username": f"rnd{secrets.token_hex(6)}", "password": "guess"}
            resp = await app.post(SESSION, json=body, headers=_from(f"198.51.100.{i + 1}"))
            counts[str(resp.status)] = counts.get(str(resp.status), 0) + 1

    flooders = [asyncio.create_task(flood(i)) for i in range(16)]
    await asyncio.sleep(0.5)
    loaded = await dashboard_ms(40)
    stop.set()
    await asyncio.gather(*flooders)
    guard = app.app[LOGIN_GUARD]
    p50 = statistics.median
    print(
        f"\ndashboard quiet p50 {p50(quiet):.0f} ms max {max(quiet):.0f} ms; "
        f"under 16 flooders p50 {p50(loaded):.0f} ms p95 "
        f"{statistics.quantiles(loaded, n=20)[-1]:.0f} ms; logins {counts}; "
        f"peak hashes at once {guard.peak_hashing}"
    )
    assert guard.peak_hashing <= settings.login_hash_concurrency
    assert counts["401"] <= 16 * settings.login_attempts_per_address_per_min
    assert counts["429"] > 0


async def _staff_token(client: Any) -> dict[str, str]:
    from devices import store
    from web.keys import SESSIONMAKER

    async with client.app[SESSIONMAKER]() as session:
        account = await store.create_account(session, "admin9", PASSWORD, "admin", "48820")
        issued = await store.create_api_token(session, account, "t")
        await session.commit()
    return {"Authorization": f"Bearer {issued.token}"}

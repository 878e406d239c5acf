"""#11.8: bad inputs that made 0.1 answer 500 (or act on the wrong row), each a clear 4xx now."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from devices.models import Account
from web.keys import SESSIONMAKER

from .foundation_helpers import VILLAGE, add_account, row_counts

JSON = {"Content-Type": "application/json"}


def _nested(depth: int) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b"}"


HOSTILE_JSON = {
    "lone-surrogate": b'{"name": "\\ud800"}',
    "lone-low-surrogate-in-key": b'{"\\udc00": "x"}',
    "nested-100000": _nested(100_000),
    "nested-40": _nested(40),
    "integer-5000-digits": b'{"name": "x", "scale": ' + b"9" * 5000 + b"}",
    "integer-20-digits": b'{"announcement_id": ' + b"1" * 20 + b', "targets": {}}',
    "nan": b'{"name": NaN}',
    "infinity": b'{"name": -Infinity}',
}

# Endpoints of several owners: each reads its body through web/validation.parse_json.
ENDPOINTS = [
    "/api/v1/tokens",
    "/api/v1/devices",
    "/api/v1/listeners",
    "/api/v1/broadcasts",
    "/api/v1/qr",
    "/api/v1/announcements",
    "/api/v1/live/publish",
]


@pytest.mark.parametrize("body", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
async def test_hostile_json_is_a_422_problem_everywhere(
    client: Any, admin_headers: dict[str, str], body: bytes
) -> None:
    before = await row_counts(client)
    for path in ENDPOINTS:
        resp = await client.post(path, data=body, headers={**admin_headers, **JSON})
        assert resp.status == 422, (path, resp.status, await resp.text())
        assert resp.content_type == "application/problem+json"
    assert await row_counts(client) == before


async def test_a_valid_surrogate_pair_is_still_accepted(
    client: Any, admin_headers: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/tokens",
        data=b'{"name": "\\ud83d\\ude00 script"}',
        headers={**admin_headers, **JSON},
    )
    assert resp.status == 201
    assert (await resp.json())["name"] == "😀 script"


UNICODE_DIGITS = ["٣", "²", "①", "３", "߃", "𝟑"]


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
async def test_unicode_digits_are_not_ids(
    client: Any, admin_headers: dict[str, str], digit: str
) -> None:
    """``DELETE /api/v1/users/٣`` disabled user 3 in 0.1; ``²`` was a 500."""
    for name in ("user1", "user2", "user3"):
        await add_account(client, name, "village", VILLAGE)
    before = await row_counts(client)
    paths = [
        ("DELETE", f"/api/v1/users/{digit}"),
        ("DELETE", f"/api/v1/tokens/{digit}"),
        ("GET", f"/api/v1/devices/{digit}"),
        ("GET", f"/api/v1/groups/{digit}"),
        ("DELETE", f"/api/v1/listeners/{digit}"),
        ("GET", f"/api/v1/announcements/{digit}"),
        ("GET", f"/api/v1/broadcasts/{digit}"),
        ("POST", f"/api/v1/broadcasts/{digit}/cancel"),
        ("GET", f"/media/announcements/{digit}.mp3"),
        ("DELETE", f"/api/v1/live/sessions/{digit}"),
    ]
    for method, path in paths:
        resp = await client.request(method, path, headers=admin_headers)
        assert resp.status == 404, (method, path, resp.status)
        assert resp.content_type == "application/problem+json"
    for path in ("/api/v1/audit", "/api/v1/announcements", "/api/v1/broadcasts"):
        for param in ("limit", "offset"):
            resp = await client.get(f"{path}?{param}={digit}", headers=admin_headers)
            assert resp.status == 422, (path, param, resp.status)
    assert await row_counts(client) == before
    async with client.app[SESSIONMAKER]() as session:
        disabled = (await session.scalars(select(Account).where(Account.disabled))).all()
    assert disabled == []


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=" + "b" * 71,
        "multipart/form-data; boundary=",
    ],
    ids=["missing-boundary", "boundary-71", "empty-boundary"],
)
async def test_multipart_without_a_usable_boundary_is_a_422(
    client: Any, admin_headers: dict[str, str], content_type: str
) -> None:
    body = b"--x\r\nContent-Disposition: form-data; name=title\r\n\r\nhi\r\n--x--\r\n"
    resp = await client.post(
        "/api/v1/announcements", data=body, headers={**admin_headers, "Content-Type": content_type}
    )
    assert resp.status == 422, await resp.text()
    assert resp.content_type == "application/problem+json"


async def test_a_qr_payload_that_does_not_fit_is_a_422(
    client: Any, admin_headers: dict[str, str]
) -> None:
    resp = await client.post("/api/v1/qr", json={"text": "😀" * 1000}, headers=admin_headers)
    assert resp.status == 422
    assert (await resp.json())["field"] == "text"
    ok = await client.post("/api/v1/qr", json={"text": "x" * 1000}, headers=admin_headers)
    assert ok.status == 200

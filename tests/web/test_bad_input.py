"""Bad input on every endpoint of the foundation: a clear 4xx problem, and nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from .foundation_helpers import VILLAGE, row_counts

GROUP = "/api/v1/groups/{group}/members"

# (method, path, a valid body) of every endpoint that takes JSON.
JSON_ENDPOINTS = [
    ("POST", "/api/v1/session", {"username": "admin1", "password": "correct horse battery"}),
    ("POST", "/api/v1/tokens", {"name": "script"}),
    (
        "POST",
        "/api/v1/users",
        {"username": "newbie", "password": "long enough", "role": "admin", "region": "48820"},
    ),
    ("PATCH", f"/api/v1/regions/{VILLAGE}", {"tags": ["coastal"]}),
    ("POST", "/api/v1/devices", {"village": VILLAGE, "name": "box"}),
    ("POST", "/api/v1/groups", {"name": "g", "region": "goseong-eup"}),
    ("POST", GROUP, {"devices": []}),
    ("POST", "/api/v1/listeners", {"village": VILLAGE, "nickname": "a", "consent": True}),
]


async def _oversized() -> AsyncIterator[bytes]:
    yield b'{"name": "'
    for _ in range(300):
        yield b"x" * 1024
    yield b'"}'


BAD_BODIES: dict[str, dict[str, Any]] = {
    "malformed": {"data": b'{"name": ', "headers": {"Content-Type": "application/json"}},
    "not-an-object": {"data": b'["a", "b"]', "headers": {"Content-Type": "application/json"}},
    "empty": {"data": b"", "headers": {"Content-Type": "application/json"}},
    "bad-utf8": {"data": b'{"name": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}},
    "wrong-type": {"data": b'{"name": "x"}', "headers": {"Content-Type": "text/plain"}},
    "form": {"data": {"name": "x"}},
    "oversized": {
        "data": b'{"name": "' + b"x" * 300 * 1024 + b'"}',
        "headers": {"Content-Type": "application/json"},
    },
    "oversized-chunked": {"data": "STREAM", "headers": {"Content-Type": "application/json"}},
    "unknown-field": {"json_extra": {"is_admin": True}},
}


@pytest.fixture
async def setup_rows(client: Any, admin_headers: dict[str, str]) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/groups", json={"name": "existing", "region": "48820"}, headers=admin_headers
    )
    assert resp.status == 201
    return {"group": (await resp.json())["id"]}


EXPECTED_STATUS = {"oversized": 413, "oversized-chunked": 413, "wrong-type": 415, "form": 415}


@pytest.mark.parametrize(("method", "path", "valid"), JSON_ENDPOINTS, ids=lambda v: str(v)[:30])
async def test_bad_bodies_get_a_problem_and_write_nothing(
    client: Any,
    admin_headers: dict[str, str],
    setup_rows: dict[str, Any],
    method: str,
    path: str,
    valid: dict[str, Any],
) -> None:
    path = path.format(**setup_rows)
    before = await row_counts(client)
    failures = []
    for kind in sorted(BAD_BODIES):  # one app for every kind: app start-up is the slow part
        spec = dict(BAD_BODIES[kind])
        if "json_extra" in spec:
            spec = {"json": {**valid, **spec.pop("json_extra")}}
        elif spec.get("data") == "STREAM":
            spec["data"] = _oversized()
        headers = {**admin_headers, **spec.pop("headers", {})}
        resp = await client.request(method, path, headers=headers, **spec)
        text = await resp.text()
        body = await resp.json(content_type=None) if resp.content_type.endswith("json") else {}
        ok = (
            resp.status == EXPECTED_STATUS.get(kind, 422)
            and resp.content_type == "application/problem+json"
            and body.get("status") == resp.status
            and body.get("title")
            and body.get("detail")
            and "Traceback" not in text
        )
        if not ok:
            failures.append(f"{kind}: {resp.status} {text[:200]}")
        if await row_counts(client) != before:
            failures.append(f"{kind}: wrote to the database")
    assert not failures, failures


@pytest.mark.parametrize(("method", "path", "valid"), JSON_ENDPOINTS, ids=lambda v: str(v)[:30])
async def test_the_valid_body_of_each_row_is_accepted(
    client: Any,
    admin_headers: dict[str, str],
    setup_rows: dict[str, Any],
    method: str,
    path: str,
    valid: dict[str, Any],
) -> None:
    # Guards the table above: the bad cases fail for their badness, not for a wrong valid body.
    resp = await client.request(
        method, path.format(**setup_rows), json=valid, headers=admin_headers
    )
    assert resp.status in (200, 201), await resp.text()


BAD_IDS = [
    ("GET", "/api/v1/devices/abc"),
    ("GET", "/api/v1/devices/99999"),
    ("DELETE", "/api/v1/devices/-1"),
    ("DELETE", "/api/v1/devices/99999999999999999999999"),
    ("DELETE", "/api/v1/tokens/x"),
    ("DELETE", "/api/v1/users/99999"),
    ("GET", "/api/v1/groups/0x1"),
    ("DELETE", "/api/v1/groups/99999"),
    ("DELETE", "/api/v1/groups/{group}/members/99999"),
    ("DELETE", "/api/v1/groups/{group}/members/abc"),
    ("POST", "/api/v1/listeners/abc/approve"),
    ("POST", "/api/v1/listeners/99999/approve"),
    ("DELETE", "/api/v1/listeners/99999"),
    ("GET", "/api/v1/regions/%2e%2e"),
    ("PATCH", "/api/v1/regions/nowhere"),
    ("GET", "/api/v1/nothing/here"),
]


async def test_bad_ids_are_404_problems(
    client: Any, admin_headers: dict[str, str], setup_rows: dict[str, Any]
) -> None:
    before = await row_counts(client)
    failures = []
    for method, path in BAD_IDS:
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        url = path.format(**setup_rows)
        resp = await client.request(method, url, headers=admin_headers, **kwargs)
        if resp.status != 404 or resp.content_type != "application/problem+json":
            failures.append(f"{method} {url}: {resp.status}")
    assert not failures, failures
    assert await row_counts(client) == before


BAD_QUERIES = [
    ("limit=abc", "/api/v1/audit"),
    ("limit=100000", "/api/v1/audit"),
    ("offset=-3", "/api/v1/audit"),
    ("limit=0", "/api/v1/listeners"),
    ("status=everything", "/api/v1/listeners"),
    ("action=" + "x" * 65, "/api/v1/audit"),
]


async def test_bad_query_parameters_are_422(client: Any, admin_headers: dict[str, str]) -> None:
    for query, path in BAD_QUERIES:
        resp = await client.get(f"{path}?{query}", headers=admin_headers)
        assert resp.status == 422, (path, query)
        assert resp.content_type == "application/problem+json"


async def test_wrong_method_is_a_405_problem(client: Any) -> None:
    resp = await client.put("/api/v1/regions", json={})
    assert resp.status == 405
    assert resp.content_type == "application/problem+json"
    assert "GET" in resp.headers["Allow"]


STAFF_ENDPOINTS = [
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/devices"),
    ("GET", "/api/v1/devices"),
    ("POST", "/api/v1/groups"),
    ("GET", "/api/v1/listeners"),
    ("GET", "/api/v1/audit"),
    ("PATCH", f"/api/v1/regions/{VILLAGE}"),
]


async def test_staff_endpoints_want_a_login(client: Any) -> None:
    before = await row_counts(client)
    for method, path in STAFF_ENDPOINTS:
        headers = {"Authorization": "Bearer vca_nope"}
        resp = await client.request(method, path, json={}, headers=headers)
        assert resp.status == 401, (method, path)
        assert resp.content_type == "application/problem+json"
        anonymous = await client.request(method, path, json={})
        assert anonymous.status == 401, (method, path)
    assert await row_counts(client) == before

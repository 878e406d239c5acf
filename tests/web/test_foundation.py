"""The app starts on a fresh data directory and answers health and problem requests."""

from __future__ import annotations

from typing import Any


async def test_healthz_answers(client: Any) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_unknown_api_path_is_a_404_problem(client: Any) -> None:
    resp = await client.get("/api/v1/no-such-thing", headers={"Accept-Language": "en"})
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == 404
    assert body["title"] == "Not found"


async def test_problem_title_is_korean_by_default(client: Any) -> None:
    resp = await client.get("/api/v1/no-such-thing")
    body = await resp.json()
    assert body["title"] == "찾을 수 없습니다"

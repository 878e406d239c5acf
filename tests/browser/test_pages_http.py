"""The pages, static files and the console's own JSON, in-process (no browser)."""

from __future__ import annotations

from typing import Any

from devices import store
from web.keys import SESSIONMAKER
from web.pages import ASSET_VERSION

VILLAGE = "goseong-eup-seongnae-ri"


async def test_console_sends_anonymous_visitors_to_login(client: Any) -> None:
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/login"


async def test_pages_are_korean_html_and_not_cached(client: Any) -> None:
    for path in ("/login", "/listen"):
        resp = await client.get(path)
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == "no-store"
        html = await resp.text()
        assert '<html lang="ko">' in html
        assert "{{v}}" not in html  # asset version filled in
        assert f"?v={client.app[ASSET_VERSION]}" in html


async def test_static_files_have_caching_headers(client: Any) -> None:
    version = client.app[ASSET_VERSION]
    resp = await client.get(f"/static/js/api.js?v={version}")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.content_type == "text/javascript"
    etag = resp.headers["ETag"]
    plain = await client.get("/static/js/api.js")
    assert plain.headers["Cache-Control"] == "public, max-age=0, must-revalidate"
    again = await client.get("/static/js/api.js", headers={"If-None-Match": etag})
    assert again.status == 304


async def test_static_files_stay_inside_the_static_tree(client: Any) -> None:
    for path in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/js/nope.js"):
        resp = await client.get(path)
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"


async def test_manifest_and_service_worker(client: Any) -> None:
    resp = await client.get("/manifest.webmanifest")
    assert resp.status == 200
    assert resp.content_type == "application/manifest+json"
    manifest = await resp.json(content_type=None)
    assert manifest["start_url"] == "/listen"
    sw = await client.get("/sw.js")
    assert sw.status == 200
    assert sw.headers["Service-Worker-Allowed"] == "/"
    assert sw.headers["Cache-Control"] == "no-cache"


async def test_dashboard_needs_login(client: Any) -> None:
    resp = await client.get("/api/v1/dashboard")
    assert resp.status == 401


async def test_dashboard_counts_speakers_and_residents_per_village(
    client: Any, admin_headers: dict[str, str]
) -> None:
    async with client.app[SESSIONMAKER]() as session:
        await store.create_device(session, VILLAGE, "회관")
        await store.create_device(session, VILLAGE, "정자")
        await store.create_listener(session, VILLAGE, "박씨", True)
        await session.commit()
    resp = await client.get("/api/v1/dashboard", headers=admin_headers)
    assert resp.status == 200
    body = await resp.json()
    assert len(body["districts"]) == 14
    district = next(d for d in body["districts"] if d["code"] == "goseong-eup")
    village = next(v for v in district["villages"] if v["code"] == VILLAGE)
    assert (village["speakers_online"], village["speakers_total"]) == (0, 2)
    assert village["residents"] == 1
    assert body["totals"]["speakers_total"] == 2


async def test_village_head_dashboard_shows_only_their_village(
    client: Any, make_staff: Any
) -> None:
    headers = await make_staff("village", VILLAGE)
    body = await (await client.get("/api/v1/dashboard", headers=headers)).json()
    assert [d["code"] for d in body["districts"]] == ["goseong-eup"]
    assert [v["code"] for v in body["districts"][0]["villages"]] == [VILLAGE]


async def test_qr_code_is_svg_for_staff_only(client: Any, admin_headers: dict[str, str]) -> None:
    text = f"http://127.0.0.1:8080/live/{VILLAGE}.mp3?token=vcs_x"
    resp = await client.post("/api/v1/qr", json={"text": text}, headers=admin_headers)
    assert resp.status == 200
    assert resp.content_type == "image/svg+xml"
    assert (await resp.text()).lstrip().startswith("<?xml")
    assert (await client.post("/api/v1/qr", json={"text": text})).status == 401
    bad = await client.post("/api/v1/qr", json={"text": "x" * 5000}, headers=admin_headers)
    assert bad.status == 422


async def test_replays_need_a_listener_token_and_start_empty(client: Any) -> None:
    assert (await client.get("/api/v1/replays")).status == 401
    async with client.app[SESSIONMAKER]() as session:
        _, token = await store.create_listener(session, VILLAGE, "박씨", True)
        await session.commit()
    resp = await client.get("/api/v1/replays", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert await resp.json() == {"village": VILLAGE, "items": []}


async def test_district_officer_dashboard_shows_only_their_district(
    client: Any, make_staff: Any
) -> None:
    headers = await make_staff("district", "hai-myeon")
    body = await (await client.get("/api/v1/dashboard", headers=headers)).json()
    assert [d["code"] for d in body["districts"]] == ["hai-myeon"]
    villages = [v["code"] for v in body["districts"][0]["villages"]]
    assert villages
    assert all(code.startswith("hai-myeon-") for code in villages)


async def test_login_page_treats_a_revoked_token_as_logged_out(client: Any) -> None:
    resp = await client.get(
        "/login", headers={"Authorization": "Bearer vca_revoked"}, allow_redirects=False
    )
    assert resp.status == 200
    assert "text/html" in resp.headers["Content-Type"]

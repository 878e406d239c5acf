"""CAP feeds: a real HTTP server on 127.0.0.1 serves an Atom feed; the poller fetches with
conditional GET, picks up a new entry once, and survives a broken feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from broadcast.alerts.feeds import read_feed
from broadcast.alerts.poller import FeedPoller

CAP_DIR = Path(__file__).parent / "cap"
TYPHOON = (CAP_DIR / "kma-typhoon-goseong.xml").read_bytes()
QUAKE = (CAP_DIR / "oasis-a3-earthquake-update.xml").read_bytes()


def atom(entries: list[str]) -> bytes:
    items = "".join(
        f"<entry><id>{e}</id><title>{e}</title><updated>2026-09-12T03:10:00+09:00</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="/cap/{e}.xml"/></entry>'
        for e in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:test</id><title>alerts</title><updated>2026-09-12T03:10:00+09:00</updated>{items}</feed>"
    ).encode()


def test_a_cap_document_is_its_own_feed() -> None:
    assert read_feed(TYPHOON, "http://127.0.0.1/x").documents == (TYPHOON,)


def test_atom_links_are_made_absolute_and_only_http() -> None:
    feed = atom(["a", "b"]).replace(b'href="/cap/b.xml"', b'href="file:///etc/passwd"')
    content = read_feed(feed, "http://127.0.0.1:9/feed")
    assert content.links == ("http://127.0.0.1:9/cap/a.xml",)


def test_inline_atom_content_and_rss_enclosures() -> None:
    inline = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="text/xml">'
        + TYPHOON.split(b"?>", 1)[1]
        + b"</content></entry></feed>"
    )
    assert len(read_feed(inline, "http://h/").documents) == 1
    rss = (
        b'<rss version="2.0"><channel><item><title>x</title>'
        b'<enclosure url="http://h/a.xml" type="application/cap+xml" length="1"/></item>'
        b"<item><link>http://h/b.xml</link></item></channel></rss>"
    )
    assert read_feed(rss, "http://h/").links == ("http://h/a.xml", "http://h/b.xml")


def test_hostile_feeds_are_errors_not_crashes() -> None:
    assert read_feed(b'<!DOCTYPE x [<!ENTITY a "b">]><feed/>', "http://h/").error
    assert read_feed(b"<html/>", "http://h/").error
    assert read_feed(b"\xff\xfe", "http://h/").error


async def test_poller_uses_conditional_get_and_ingests_each_entry_once(aiohttp_server: Any) -> None:
    state: dict[str, Any] = {"entries": ["typhoon"], "etag_hits": 0, "broken": False}
    docs = {"typhoon": TYPHOON, "quake": QUAKE}

    async def feed(request: web.Request) -> web.Response:
        if state["broken"]:
            return web.Response(status=500)
        etag = '"' + ",".join(state["entries"]) + '"'
        if request.headers.get("If-None-Match") == etag:
            state["etag_hits"] += 1
            return web.Response(status=304)
        return web.Response(body=atom(state["entries"]), headers={"ETag": etag},
                            content_type="application/atom+xml")  # fmt: skip

    async def doc(request: web.Request) -> web.Response:
        return web.Response(
            body=docs[request.match_info["name"]], content_type="application/cap+xml"
        )

    app = web.Application()
    app.router.add_get("/feed", feed)
    app.router.add_get("/cap/{name}.xml", doc)
    server = await aiohttp_server(app, host="127.0.0.1")
    got: list[tuple[bytes, str]] = []

    async def ingest(data: bytes, source: str) -> None:
        got.append((data, source))

    poller = FeedPoller([str(server.make_url("/feed"))], ingest, interval_s=10)
    assert await poller.poll_once() == 1
    assert got[0][0] == TYPHOON
    assert got[0][1].startswith("feed:http://127.0.0.1")
    assert await poller.poll_once() == 0  # unchanged: a 304
    assert state["etag_hits"] == 1
    state["entries"] = ["quake", "typhoon"]
    assert await poller.poll_once() == 1  # only the new entry is fetched
    assert got[-1][0] == QUAKE
    state["broken"] = True
    assert await poller.poll_once() == 0
    assert poller.feeds[0].failures == 1
    assert "500" in poller.feeds[0].last_error

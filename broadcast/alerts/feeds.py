"""CAP feeds: what a polled URL holds (one CAP document, or an Atom/RSS feed of them). Pure.

A feed is parsed with ``defusedxml`` like a CAP document, bounded in size and in entries read
(the newest first). An entry gives either a CAP document inline (Atom ``content``) or a link to one
(a link typed ``application/cap+xml``, else its ``alternate`` or first link; RSS ``enclosure``
or ``link``). Links are absolute ``http``/``https`` only. ``poller.py`` does the fetching.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from .cap import CAP_NS

__all__ = ["MAX_FEED_BYTES", "MAX_FEED_ENTRIES", "FeedContent", "read_feed"]

MAX_FEED_BYTES = 2 * 1024 * 1024
MAX_FEED_ENTRIES = 50
ATOM = "{http://www.w3.org/2005/Atom}"
CAP_TYPES = ("application/cap+xml", "application/common-alerting-protocol+xml")


@dataclass(frozen=True, slots=True)
class FeedContent:
    """What a fetched URL gave: CAP documents in it, and links to CAP documents to fetch."""

    documents: tuple[bytes, ...] = ()
    links: tuple[str, ...] = ()
    error: str = ""  # why nothing could be read (shown on the alerts page, logged)


def read_feed(data: bytes, base_url: str) -> FeedContent:
    """Classify a fetched body: a CAP alert, an Atom feed, an RSS feed, or an error."""
    if len(data) > MAX_FEED_BYTES:
        return FeedContent(error=f"larger than {MAX_FEED_BYTES // 1024} KB")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        return FeedContent(error="uses a DTD or entities")
    except ParseError as exc:
        return FeedContent(error=f"not XML: {exc}")
    if root.tag == "{" + CAP_NS + "}alert":
        return FeedContent(documents=(data,))
    if root.tag == ATOM + "feed":
        return _atom(root, base_url)
    if root.tag == "rss":
        return _rss(root, base_url)
    return FeedContent(error=f"neither CAP nor a feed (root {root.tag!r})")


def _atom(root: Element, base: str) -> FeedContent:
    docs: list[bytes] = []
    links: list[str] = []
    for entry in root.findall(ATOM + "entry")[:MAX_FEED_ENTRIES]:
        inline = entry.find(f"{ATOM}content/{{{CAP_NS}}}alert")
        if inline is not None:
            docs.append(tostring(inline, encoding="utf-8"))
            continue
        candidates = entry.findall(ATOM + "link")
        chosen = next((c for c in candidates if c.get("type") in CAP_TYPES), None)
        chosen = chosen or next(
            (c for c in candidates if c.get("rel", "alternate") == "alternate"), None
        )
        href = _absolute(chosen.get("href", "") if chosen is not None else "", base)
        if href:
            links.append(href)
    return FeedContent(tuple(docs), tuple(dict.fromkeys(links)))


def _rss(root: Element, base: str) -> FeedContent:
    links: list[str] = []
    for item in root.findall("channel/item")[:MAX_FEED_ENTRIES]:
        enclosure = item.find("enclosure")
        href = enclosure.get("url", "") if enclosure is not None else ""
        if not href:
            link = item.find("link")
            href = (link.text or "").strip() if link is not None else ""
        href = _absolute(href, base)
        if href:
            links.append(href)
    return FeedContent(links=tuple(dict.fromkeys(links)))


def _absolute(href: str, base: str) -> str:
    url = urljoin(base, href.strip())
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else ""

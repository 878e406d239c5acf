"""The podcast feed of a village (RSS 2.0 with iTunes tags): its broadcast announcements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from recordings.models import Announcement, Rendition

__all__ = ["rss_feed"]


def rss_feed(
    name_ko: str,
    name_en: str,
    rows: Sequence[tuple[Announcement, Rendition, datetime]],
    base: str,
    token: str | None,
) -> str:
    """The feed's XML; enclosures carry ``?token=`` when it was fetched with one (replays count)."""
    items = []
    suffix = f"?token={token}" if token else ""
    for ann, rendition, started_at in rows:
        url = f"{base}/media/announcements/{ann.id}.mp3{suffix}"
        seconds = rendition.duration_ms // 1000
        items.append(
            "<item>"
            f"<title>{escape(ann.title)}</title>"
            f'<guid isPermaLink="false">villagecast-announcement-{ann.id}</guid>'
            f"<pubDate>{format_datetime(started_at)}</pubDate>"
            f'<enclosure url={quoteattr(url)} length="{rendition.bytes}" type="audio/mpeg"/>'
            f"<itunes:duration>{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            "</itunes:duration>"
            f"<description>{escape(ann.text or ann.title)}</description>"
            "</item>"
        )
    title = f"{name_ko} 마을방송"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        "<channel>"
        f"<title>{escape(title)}</title>"
        f"<link>{escape(base)}/listen</link>"
        f"<description>{escape(title)} ({escape(name_en)}) — villagecast</description>"
        "<language>ko</language>"
        f"<itunes:author>{escape(name_ko)}</itunes:author>"
        "<itunes:explicit>false</itunes:explicit>"
        '<itunes:category text="Government"/>' + "".join(items) + "</channel></rss>"
    )
    return xml

"""Polling CAP feeds: conditional GET at a bounded interval, each new document handed to ingest.

Each URL is fetched with ``If-None-Match`` / ``If-Modified-Since`` from its last answer, so an
unchanged feed costs a 304. Linked documents are fetched once (the seen set is bounded); the
ingest is idempotent on ``identifier``+``sender``+``sent`` anyway, so a document seen twice airs
once. A failing feed backs off (doubling, up to eight intervals) and never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from .feeds import MAX_FEED_BYTES, read_feed

__all__ = ["FeedPoller", "FeedState"]

log = logging.getLogger(__name__)

Ingest = Callable[[bytes, str], Awaitable[object]]  # (document, source) → anything
MIN_INTERVAL_S = 10.0
MAX_INTERVAL_S = 3600.0
SEEN_LINKS = 2000


@dataclass(slots=True)
class FeedState:
    """What the poller knows of one URL."""

    url: str
    etag: str = ""
    last_modified: str = ""
    failures: int = 0
    last_error: str = ""
    documents: int = 0
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)


class FeedPoller:
    """Polls each configured URL every ``interval_s`` (bounded to 10 s – 1 h)."""

    def __init__(self, urls: Sequence[str], ingest: Ingest, interval_s: float = 60.0) -> None:
        self.interval_s = min(max(interval_s, MIN_INTERVAL_S), MAX_INTERVAL_S)
        self.feeds = [FeedState(u) for u in dict.fromkeys(urls) if u]
        self._ingest = ingest
        self._task: asyncio.Task[None] | None = None
        self._timeout = aiohttp.ClientTimeout(total=15, sock_connect=5)

    def start(self) -> None:
        """Begin polling in the background (no-op without URLs)."""
        if self.feeds and self._task is None:
            self._task = asyncio.create_task(self._run(), name="cap-feed-poller")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def poll_once(self) -> int:
        """Fetch every feed once; the number of documents handed to ingest."""
        async with aiohttp.ClientSession(timeout=self._timeout) as http:
            counts = await asyncio.gather(*(self._poll(http, f) for f in self.feeds))
        return sum(counts)

    async def _run(self) -> None:
        tick = 0
        while True:
            async with aiohttp.ClientSession(timeout=self._timeout) as http:
                due = [f for f in self.feeds if tick % (2 ** min(f.failures, 3)) == 0]
                await asyncio.gather(*(self._poll(http, f) for f in due))
            tick += 1
            await asyncio.sleep(self.interval_s)

    async def _poll(self, http: aiohttp.ClientSession, feed: FeedState) -> int:
        try:
            body = await self._get(http, feed.url, feed)
            if body is None:
                return 0
            content = read_feed(body, feed.url)
            if content.error:
                raise ValueError(content.error)
            docs = list(content.documents)
            for link in content.links:
                if link in feed.seen:
                    continue
                doc = await self._get(http, link, None)
                if doc is not None:
                    docs.append(doc)
                feed.seen[link] = None
                while len(feed.seen) > SEEN_LINKS:
                    feed.seen.popitem(last=False)
            for doc in docs:
                try:
                    await self._ingest(doc, f"feed:{feed.url}")
                except Exception as exc:  # one bad document never stops the feed
                    log.warning("CAP document from %s refused: %s", feed.url, exc)
            feed.documents += len(docs)
            feed.failures, feed.last_error = 0, ""
            return len(docs)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            feed.failures += 1
            feed.last_error = str(exc) or type(exc).__name__
            log.warning("CAP feed %s failed (%d in a row): %s", feed.url, feed.failures, exc)
            return 0

    async def _get(
        self, http: aiohttp.ClientSession, url: str, state: FeedState | None
    ) -> bytes | None:
        headers = {"Accept": "application/cap+xml, application/atom+xml, application/xml"}
        if state is not None and state.etag:
            headers["If-None-Match"] = state.etag
        if state is not None and state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        async with http.get(url, headers=headers, allow_redirects=True, max_redirects=3) as resp:
            if resp.status == 304:
                return None
            if resp.status != 200:
                raise ValueError(f"{url} answered {resp.status}")
            body = await resp.content.read(MAX_FEED_BYTES + 1)
            if state is not None:
                state.etag = resp.headers.get("ETag", "")
                state.last_modified = resp.headers.get("Last-Modified", "")
            return body

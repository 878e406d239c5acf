"""Stream mounts: ``/live/{village}.mp3`` (Icecast-compatible), ``.m3u``, ``.ogg`` and HLS.

Handlers are thin: authenticate, pick the village, hand the connection's transport to the hub,
and wait until the hub closes it. The hub's pacing loop writes to the transport directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from aiohttp import web

from devices import store
from devices.errors import UnknownRegion
from devices.models import Device, Listener
from streaming.errors import WrongVillage
from streaming.hls import with_token
from streaming.hls_stream import HlsStreams
from streaming.hub import ChannelHub
from streaming.icy import DEFAULT_METAINT
from streaming.ogg_stream import OggStreams

from . import stream_clients
from .auth import stream_token
from .keys import EVENTS, SESSIONMAKER, SETTINGS
from .limits import stream_slot
from .stream_clients import OPEN_STREAMS, cached_client
from .system import METRICS

__all__ = ["HLS", "HUB", "OGG", "setup"]

log = logging.getLogger(__name__)

HUB = web.AppKey("hub", ChannelHub)
_REGIONS = web.AppKey("stream_regions", dict[str, "asyncio.Future[tuple[str, str]]"])
OGG = web.AppKey("ogg_streams", OggStreams)
HLS = web.AppKey("hls_streams", HlsStreams)
_RUNNER = web.AppKey("hub_runner", asyncio.Task[None])
_REAPER = web.AppKey("hls_reaper", asyncio.Task[None])

# Kernel send buffer of a stream socket (Linux doubles it): ~2 s of 64 kbps audio, so that a
# stalled client's backlog shows up in the transport soon and is bounded by listener_backlog_s.
STREAM_SNDBUF = 8 * 1024


class RawStreamResponse(web.StreamResponse):
    """An endless body without chunked framing or length, as Icecast sends it; ends on close."""

    _length_check = False


async def _village_of(request: web.Request, client: Device | Listener) -> str:
    """The village asked for, which must be the client's own (``me`` is the client's own)."""
    wanted = request.match_info["village"]
    own = client.village_code
    if wanted in ("me", own):
        return own
    async with request.app[SESSIONMAKER]() as session:
        await store.get_village(session, wanted)  # 404 for an unknown village
    raise WrongVillage(f"this token listens to {own!r} only")


async def _names(request: web.Request, village: str) -> tuple[str, str]:
    """Korean and English names of a village (cached; a crowd waits for one query)."""
    cache = request.app[_REGIONS]
    lookup = cache.get(village)
    if lookup is None:
        lookup = cache[village] = asyncio.ensure_future(_query_names(request.app, village))
        lookup.add_done_callback(
            lambda f: (f.cancelled() or f.exception()) and cache.pop(village, None)
        )
    return await asyncio.shield(lookup)


async def _query_names(app: web.Application, village: str) -> tuple[str, str]:
    async with app[SESSIONMAKER]() as session:
        try:
            region = await store.get_region(session, village)
        except UnknownRegion:
            return village, village
    return region.name_ko, region.name_en


def _tune(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _presence(request: web.Request, device: Device, online: bool) -> None:
    """Record a box going online/offline and tell the console (off the hot path)."""
    now = datetime.now(UTC)
    peer = request.remote
    try:
        async with request.app[SESSIONMAKER]() as session:
            await store.set_presence(session, device.id, online, now, peer if online else None)
            await session.commit()
    except Exception:  # presence must never break a stream
        log.exception("presence update of device %s failed", device.id)
    request.app[EVENTS].publish(
        "device.online" if online else "device.offline",
        device_id=device.id,
        village=device.village_code,
        at=now.isoformat(),
    )


@stream_slot
async def live_mp3(request: web.Request) -> web.StreamResponse:
    """The village channel as a continuous Icecast-compatible MP3 stream."""
    client = await cached_client(request)
    village = await _village_of(request, client)
    name_ko, name_en = await _names(request, village)
    want_meta = request.headers.get("Icy-MetaData", "").strip() == "1"
    headers = {
        "Content-Type": "audio/mpeg",
        "Cache-Control": "no-cache, no-store",
        "icy-name": f"{name_ko} 마을방송",
        "icy-description": f"villagecast: {name_en} village channel",
        "icy-br": "64",
        "icy-sr": "48000",
        "icy-pub": "0",
        "ice-audio-info": "ice-samplerate=48000;ice-bitrate=64;ice-channels=1",
    }
    if want_meta:
        headers["icy-metaint"] = str(DEFAULT_METAINT)
    response, transport, done, closed = await _open_raw(request, headers)
    if transport is None:
        return response
    hub = request.app[HUB]
    device = client if isinstance(client, Device) else None
    conn = hub.attach(
        village,
        transport,  # type: ignore[arg-type]
        device_id=device.id if device else None,
        listener_id=None if device else client.id,
        metaint=DEFAULT_METAINT if want_meta else None,
        on_close=closed,
    )
    unregister = request.app[OPEN_STREAMS].add(client, closed)
    try:
        if device is not None:
            await _presence(request, device, True)
        await done
    finally:
        unregister()
        hub.detach(village, conn, "handler ended")
        if device is not None and device.id not in hub.connected_devices(village):
            await asyncio.shield(_presence(request, device, False))
    return response


async def _open_raw(
    request: web.Request, headers: dict[str, str]
) -> tuple[
    RawStreamResponse,
    asyncio.Transport | None,
    asyncio.Future[str],
    Callable[[str], None],
]:
    """Send the headers of an endless raw stream; the future resolves when the connection closes.

    The transport is None when the client went away before the headers were sent.
    """
    response = RawStreamResponse(headers=headers)
    response.force_close()
    await response.prepare(request)
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def closed(reason: str) -> None:
        if not done.done():
            done.set_result(reason)

    transport = request.transport
    if transport is None or transport.is_closing():
        return response, None, done, closed
    _tune(transport)
    return response, transport, done, closed  # type: ignore[return-value]


@stream_slot
async def live_ogg(request: web.Request) -> web.StreamResponse:
    """The village channel as Ogg/Opus (one encoder per channel while anyone listens)."""
    client = await cached_client(request)
    village = await _village_of(request, client)
    name_ko, name_en = await _names(request, village)
    headers = {
        "Content-Type": "audio/ogg",
        "Cache-Control": "no-cache, no-store",
        "icy-name": f"{name_ko} 마을방송",
        "icy-description": f"villagecast: {name_en} village channel",
    }
    response, transport, done, closed = await _open_raw(request, headers)
    if transport is None:
        return response
    oggs = request.app[OGG]
    listener_id = client.id if isinstance(client, Listener) else None
    conn = await oggs.attach(village, transport, closed, listener_id)  # type: ignore[arg-type]
    unregister = request.app[OPEN_STREAMS].add(client, closed)
    try:
        await done
    finally:
        unregister()
        await asyncio.shield(oggs.detach(village, conn))
    return response


async def hls_playlist(request: web.Request) -> web.Response:
    """The live HLS playlist of a village (segment URIs carry the token)."""
    client = await cached_client(request)
    village = await _village_of(request, client)
    text = await request.app[HLS].playlist(village)
    return web.Response(
        text=with_token(text, request.query.get("token")),
        content_type="application/vnd.apple.mpegurl",
        headers={"Cache-Control": "no-cache"},
    )


async def hls_segment(request: web.Request) -> web.FileResponse:
    """One HLS segment (MPEG-TS, AAC)."""
    client = await cached_client(request)
    village = await _village_of(request, client)
    path = request.app[HLS].segment(village, request.match_info["segment"])
    if isinstance(client, Listener):
        request.app[HUB].note_listener(village, client.id)
    return web.FileResponse(
        path, headers={"Content-Type": "video/mp2t", "Cache-Control": "max-age=60"}
    )


async def live_m3u(request: web.Request) -> web.Response:
    """A playlist file that opens the village's MP3 stream in any player."""
    client = await cached_client(request)
    village = await _village_of(request, client)
    name_ko, _ = await _names(request, village)
    base = request.app[SETTINGS].public_url.rstrip("/") or str(request.url.origin())
    url = f"{base}/live/{village}.mp3?token={stream_token(request)}"
    body = f"#EXTM3U\n#EXTINF:-1,{name_ko} 마을방송\n{url}\n"
    return web.Response(text=body, content_type="audio/x-mpegurl", charset="utf-8")


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    # no stream is connected yet: whatever the database says after a crash is stale
    async with app[SESSIONMAKER]() as session:
        await store.mark_all_offline(session)
        await session.commit()
    app[_RUNNER] = asyncio.create_task(hub.run(), name="channel-hub")
    app[_REAPER] = asyncio.create_task(app[HLS].run(), name="hls-reaper")
    yield
    hub.close_all("server shutdown")
    for task in (app[_RUNNER], app[_REAPER]):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[OGG].close()
    await app[HLS].close()


async def _close_streams(app: web.Application) -> None:
    app[HUB].close_all("server shutdown")
    await app[OGG].close()


def setup(app: web.Application) -> None:
    """Create the channel hub, its pacing loop, metrics and the stream routes."""
    settings = app[SETTINGS]
    hub = ChannelHub(burst_s=settings.burst_s, listener_backlog_s=settings.listener_backlog_s)
    app[HUB] = hub
    app[OGG] = OggStreams(hub, settings.listener_backlog_s)
    app[HLS] = HlsStreams(hub, settings.data_dir / "hls", settings.hls_segment_s)
    app[_REGIONS] = {}
    stream_clients.setup(app)
    app.cleanup_ctx.append(_hub_ctx)
    app.on_shutdown.append(_close_streams)
    metrics = app[METRICS]
    metrics.gauge(
        "villagecast_stream_listeners",
        "Open MP3 stream connections per village channel (speaker boxes included).",
        lambda: [({"village": v}, float(n)) for v, n in sorted(hub.listener_counts().items())],
    )
    metrics.gauge(
        "villagecast_stream_dropped_total",
        "Stream connections dropped for falling behind (backlog over listener_backlog_s).",
        lambda: [({}, float(hub.dropped_total))],
    )
    app.router.add_get("/live/{village}.mp3", live_mp3, allow_head=False)
    app.router.add_get("/live/{village}.m3u", live_m3u)
    app.router.add_get("/live/{village}.ogg", live_ogg, allow_head=False)
    app.router.add_get("/hls/{village}/live.m3u8", hls_playlist)
    app.router.add_get("/hls/{village}/{segment}", hls_segment)

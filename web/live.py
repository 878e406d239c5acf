"""Going live: WebRTC publish and listen, and Icecast source clients on ``/live/{village}.mp3``.

- ``POST /api/v1/live/publish`` (staff): SDP offer + targets → SDP answer; the mic is encoded once
  into channel MP3 and played on every targeted village channel, recorded, then archived.
- ``PUT``/``SOURCE /live/{village}.mp3`` (Basic auth: username + API token): the same for
  broadcasters' tools (ffmpeg ``icecast://``, BUTT, Mixxx, Liquidsoap).
- ``POST /api/v1/live/listen/{village}`` (listener/device token): SDP offer → answer; the channel
  decoded once and encoded to Opus once, the same packets to every WebRTC listener.
- ``DELETE /api/v1/live/sessions/{id}`` (also ``/api/v1/live/publish/{id}``, staff): hang up.

The rules are those of any broadcast (``broadcast.live``); a session's end (hang-up, closed tab,
lost connection, a mute source) closes the feeds, so the channels return to their queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiortc import RTCPeerConnection
from aiortc.rtcrtpsender import RTCRtpSender
from av.audio.frame import AudioFrame

from broadcast import live as live_broadcast
from broadcast.dispatcher import DispatcherConfig
from broadcast.quiet import QuietHours
from devices import store
from devices.errors import InvalidField, NotFoundError, VillagecastError
from devices.models import Account, Listener
from devices.targets import Targets
from streaming.errors import WrongVillage
from streaming.hub import load_frames
from streaming.items import ItemReport, PlayItem, Priority
from streaming.live_encode import SessionOutput, SourceTranscoder
from streaming.source_client import (
    CONTINUE,
    SourceAuthFailed,
    StreamTap,
    input_format_of,
    parse_source_request,
)
from streaming.webrtc import (
    ChannelListen,
    PacketTrack,
    PcmTrack,
    PublishPeer,
    TooManyWebRtcListeners,
    add_public_candidates,
    answer_offer,
    check_offer,
    host_addresses_for,
    ice_configuration,
    parse_ice_servers,
    pinned_host_addresses,
)

from . import api_announcements, streams
from .auth import require_account, stream_client
from .keys import SESSIONMAKER, SETTINGS
from .limits import stream_slot
from .problems import from_error
from .validation import bool_field, json_body, text_field

__all__ = ["LIVE", "LiveService", "setup"]

log = logging.getLogger(__name__)

GATHER_TIMEOUT_S = 2.5  # ICE gathering (no trickle): never wait longer
PUBLISH_IDLE_S = 3.0  # no audio frames for this long: the publisher is gone
SOURCE_IDLE_S = 10.0  # a source client that sends nothing for this long is gone
LISTENERS_WRITE_DELAY_S = 0.5  # after an item's end report, before adding WebRTC listeners


class UnknownSession(NotFoundError):
    """No such live session."""

    title_ko = "그런 생방송이 없습니다"


@dataclass(eq=False)
class LiveSession:
    """One live session: its broadcast rows, its encoded output and how it ends."""

    id: int
    kind: str  # webrtc | source
    account_id: int
    username: str
    region_code: str
    title: str
    live: live_broadcast.LiveBroadcast
    output: SessionOutput
    started_at: datetime
    peer: PublishPeer | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""
    announcement_id: int | None = None
    placements: dict[str, str] = field(default_factory=dict)  # village → plays_now|preempts|queued
    chime_s: float = 0.0  # the opening chime's length: the speaker is heard after it
    outro: list[bytes] = field(default_factory=list)  # closing chime frames

    def to_json(self) -> dict[str, Any]:
        """The session as the API shows it."""
        return {
            "session_id": self.id,
            "kind": self.kind,
            "broadcast_id": self.live.broadcast_id,
            "villages": sorted(self.live.items),
            "placements": self.placements,
            "chime_s": self.chime_s,
            "title": self.title,
            "started_at": self.started_at.isoformat(),
            "bytes": self.output.bytes,
            "ended": self.ended.is_set(),
            "end_reason": self.end_reason,
            "announcement_id": self.announcement_id,
        }


class LiveService:
    """Every live session and WebRTC listener of this server."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        settings = app[SETTINGS]
        self.settings = settings
        self.ice_urls = parse_ice_servers(settings.ice_servers)
        host_addresses = host_addresses_for(settings.host)
        self.loopback = host_addresses == ["127.0.0.1"]
        self.public_address = "" if self.loopback else settings.public_address
        self.config = DispatcherConfig(
            tz=ZoneInfo(settings.timezone),
            default_quiet=QuietHours.parse(settings.quiet_hours),
            validity_min=settings.validity_min,
            emergency_validity_min=settings.emergency_validity_min,
        )
        self.sessions: dict[int, LiveSession] = {}
        self.channels: dict[str, ChannelListen] = {}
        self.listen_peers: set[RTCPeerConnection] = set()
        # WebRTC listeners (resident ids) per village now, and who heard each playing item.
        self.rtc_listeners: dict[str, dict[RTCPeerConnection, int]] = {}
        self.heard: dict[str, set[int]] = {}
        # False only in benchmarks: each WebRTC listener gets its own Opus encoder (aiortc's way)
        self.shared_encoder = True
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- sessions --------------------------------------------------------------------------------

    async def open_session(
        self,
        account: Account,
        targets: Targets,
        *,
        kind: str,
        priority: Priority,
        chime: bool,
        title: str,
    ) -> LiveSession:
        """Check like a broadcast starting now, add its rows, and open a feed per village."""
        live, now = await self._record(account, targets, priority, chime, title)
        return self._open(kind, account, live, now, title, priority, chime)

    async def _record(
        self, account: Account, targets: Targets, priority: Priority, chime: bool, title: str
    ) -> tuple[live_broadcast.LiveBroadcast, datetime]:
        now = datetime.now(UTC)
        async with self.app[SESSIONMAKER]() as db:
            live = await live_broadcast.start_live_broadcast(
                db, account, targets, priority=priority, title=title, chime=chime, now=now,
                config=self.config,
            )  # fmt: skip
            await db.commit()
        return live, now

    async def _abandon(self, live: live_broadcast.LiveBroadcast) -> None:
        async with self.app[SESSIONMAKER]() as db:
            await live_broadcast.abandon(db, live)
            await db.commit()

    def _open(
        self,
        kind: str,
        account: Account,
        live: live_broadcast.LiveBroadcast,
        now: datetime,
        title: str,
        priority: Priority,
        chime: bool,
    ) -> LiveSession:
        session_id = next(self._ids)
        recording = self.settings.data_dir / "live" / f"{now:%Y%m%dT%H%M%S}-{live.broadcast_id}.mp3"
        hub = self.app[streams.HUB]
        # What each channel does with the live item: plays now, preempts, or waits in the queue
        # behind an item of the same or a higher priority (the rules of any broadcast).
        placements: dict[str, str] = {
            v: hub.predict(v, priority).outcome for v in sorted(live.items)
        }
        feeds = [
            hub.open_live(
                PlayItem(
                    item_id=item_id,
                    village=village,
                    title=title,
                    parts=(),
                    priority=priority,
                    broadcast_id=live.broadcast_id,
                )
            )
            for village, item_id in sorted(live.items.items())
        ]
        session = LiveSession(
            id=session_id,
            kind=kind,
            account_id=account.id,
            username=account.username,
            region_code=account.region_code,
            title=title,
            live=live,
            output=SessionOutput(feeds, recording),
            started_at=now,
            placements=placements,
        )
        self.sessions[session_id] = session
        if chime:
            intro, session.outro = self._chime_frames(priority)
            session.chime_s = round(session.output.play_jingle(intro, hold=True), 2)
        return session

    def _chime_frames(self, priority: Priority) -> tuple[list[bytes], list[bytes]]:
        """The opening and closing chime as channel MP3 frames (none when unavailable)."""
        try:
            chimes = self.app[api_announcements.INGEST].chimes
            if chimes is None:
                return [], []
            if priority >= Priority.EMERGENCY:
                paths = (chimes.emergency_start, chimes.emergency_end)
            else:
                paths = (chimes.start, chimes.end)
            return load_frames(paths[0]), load_frames(paths[1])
        except Exception:
            log.exception("chimes unavailable; going live without them")
            return [], []

    async def end_session(self, session: LiveSession, reason: str) -> None:
        """Close the feeds (the channels return to their queue), then archive the recording."""
        if session.ended.is_set():
            return
        session.end_reason = reason
        session.ended.set()
        recording = session.output.close(session.outro)
        if session.peer is not None:
            await session.peer.close()
        log.info(
            "live session %s ended (%s): %d bytes, %d ms",
            session.id, reason, recording.bytes, recording.duration_ms,
        )  # fmt: skip
        try:
            async with self.app[SESSIONMAKER]() as db:
                if recording.bytes == 0:
                    recording.path.unlink(missing_ok=True)
                    await live_broadcast.drop_placeholder(db, session.live, "nothing was said")
                else:
                    ingest = self.app[api_announcements.INGEST]
                    announcement_id = await ingest.submit_file(
                        recording.path,
                        title=session.title,
                        source="live",
                        created_by=session.account_id,
                        region_code=session.region_code,
                        original_name=recording.path.name,
                    )
                    session.announcement_id = announcement_id
                    await live_broadcast.attach_recording(db, session.live, announcement_id)
                await db.commit()
        except Exception:
            log.exception("could not archive live session %s", session.id)
        finally:
            self.sessions.pop(session.id, None)

    async def recover(self) -> int:
        """Archive the recordings of sessions cut off by a crash or restart; how many."""
        folder = self.settings.data_dir / "live"
        recovered = 0
        for path in sorted(folder.glob("*.mp3")) if folder.is_dir() else []:
            match = re.fullmatch(r".*-(\d+)\.mp3", path.name)
            found = None
            if match is not None and path.stat().st_size > 0:
                async with self.app[SESSIONMAKER]() as db:
                    found = await live_broadcast.interrupted(db, int(match[1]))
            if found is None:
                path.unlink(missing_ok=True)
                continue
            live, title, author, region = found
            try:
                announcement_id = await self.app[api_announcements.INGEST].submit_file(
                    path, title=title, source="live", created_by=author, region_code=region,
                    original_name=path.name,
                )  # fmt: skip
                async with self.app[SESSIONMAKER]() as db:
                    await live_broadcast.attach_recording(db, live, announcement_id)
                    await db.commit()
                recovered += 1
            except Exception:
                log.exception("could not recover the live recording %s", path.name)
        if recovered:
            log.warning("archived %d live recording(s) cut off by a restart", recovered)
        return recovered

    def spawn(self, coro: Any) -> None:
        """Run a background task that the service cancels on shutdown."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(
        self, account: Account, targets: Targets, priority: Priority, chime: bool, title: str,
        sdp: str, kind: str,
    ) -> tuple[LiveSession, str]:  # fmt: skip
        """A WebRTC publisher: checked and recorded like a broadcast, negotiated, on air."""
        live, now = await self._record(account, targets, priority, chime, title)
        opened: list[LiveSession] = []

        def on_frame(frame: AudioFrame) -> None:
            if opened:
                session = opened[0]
                session.output.push_frame(frame)
                if session.output.feeds_ended and not session.ended.is_set():
                    self.spawn(self.end_session(session, "ended on every channel"))

        peer = PublishPeer(
            ice_configuration(self.ice_urls), on_frame, idle_timeout_s=PUBLISH_IDLE_S
        )
        try:
            answer = await peer.answer(sdp, kind, GATHER_TIMEOUT_S)
        except BaseException:
            await peer.close()
            await self._abandon(live)
            raise
        session = self._open("webrtc", account, live, now, title, priority, chime)
        session.peer = peer
        opened.append(session)
        self.spawn(self._watch(session, peer))
        return session, add_public_candidates(answer.sdp, self.public_address)

    async def _watch(self, session: LiveSession, peer: PublishPeer) -> None:
        reason = await peer.wait_ended()
        await self.end_session(session, reason)

    # --- WebRTC listeners ------------------------------------------------------------------------

    async def listen(
        self, village: str, sdp: str, kind: str, listener_id: int | None = None
    ) -> str:
        """A WebRTC listener of a village channel: the answer SDP."""
        channel = self.channels.get(village)
        present = channel.listeners if channel is not None else 0
        if present >= self.settings.webrtc_listeners_per_channel:
            raise TooManyWebRtcListeners(
                f"{present} WebRTC listeners already; "
                f"listen at /hls/{village}/live.m3u8 or /live/{village}.mp3",
                hls=f"/hls/{village}/live.m3u8",
                mp3=f"/live/{village}.mp3",
            )
        if channel is None:
            channel = self.channels[village] = ChannelListen(village)
            self.app[streams.HUB].add_tap(village, channel.feed_mp3)
        pc = RTCPeerConnection(ice_configuration(self.ice_urls))
        track: PacketTrack | PcmTrack = (
            channel.fanout.add_listener() if self.shared_encoder else channel.add_pcm_listener()
        )
        sender = pc.addTrack(track)
        _prefer_opus(pc, sender)
        self.listen_peers.add(pc)
        if listener_id is not None:
            self.rtc_listeners.setdefault(village, {})[pc] = listener_id
            playing = self.app[streams.HUB].now_playing(village)
            if playing is not None and playing.item_id in self.heard:
                self.heard[playing.item_id].add(listener_id)

        async def closed() -> None:
            track.stop()
            self.listen_peers.discard(pc)
            self.rtc_listeners.get(village, {}).pop(pc, None)
            await pc.close()
            self._release(village)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await closed()

        try:
            answer = await answer_offer(pc, sdp, kind, GATHER_TIMEOUT_S)
        except BaseException:
            await closed()
            raise
        return add_public_candidates(answer.sdp, self.public_address)

    def on_report(self, report: ItemReport) -> None:
        """Note the WebRTC listeners who heard each item, for its broadcast's report."""
        now = set(self.rtc_listeners.get(report.village, {}).values())
        if report.event == "started":
            self.heard[report.item_id] = now
            return
        ids = self.heard.pop(report.item_id, set()) | now
        if ids and report.broadcast_id is not None:
            self.spawn(self._record_listeners(report.item_id, ids))

    async def _record_listeners(self, item_id: str, ids: set[int]) -> None:
        # Let the dispatcher write the item's end report first: both merge into the same row.
        await asyncio.sleep(LISTENERS_WRITE_DELAY_S)
        try:
            async with self.app[SESSIONMAKER]() as db:
                await live_broadcast.add_listeners(db, item_id, ids)
                await db.commit()
        except Exception:
            log.exception("could not record the WebRTC listeners of %s", item_id)

    def _release(self, village: str) -> None:
        channel = self.channels.get(village)
        if channel is not None and channel.listeners == 0:
            del self.channels[village]
            self.app[streams.HUB].remove_tap(village, channel.feed_mp3)

    async def close(self) -> None:
        """End every session and listener (server shutdown)."""
        for session in list(self.sessions.values()):
            await self.end_session(session, "server shutdown")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pc in list(self.listen_peers):
            await pc.close()
        for village, channel in list(self.channels.items()):
            channel.close()
            self.app[streams.HUB].remove_tap(village, channel.feed_mp3)
        self.channels.clear()


def _prefer_opus(pc: RTCPeerConnection, sender: RTCRtpSender) -> None:
    """Offer only Opus: the shared packets are Opus, whatever else the phone could take."""
    caps = RTCRtpSender.getCapabilities("audio")
    opus = [c for c in caps.codecs if c.mimeType.lower() == "audio/opus"]
    for transceiver in pc.getTransceivers():
        if transceiver.sender is sender:
            transceiver.setCodecPreferences(opus)


LIVE = web.AppKey("live", LiveService)


# --- handlers -------------------------------------------------------------------------------------


def _priority(data: dict[str, Any]) -> Priority:
    raw = data.get("priority", "normal")
    if not isinstance(raw, str):
        raise InvalidField("priority must be normal, urgent or emergency", field="priority")
    try:
        return Priority.parse(raw)
    except ValueError:
        raise InvalidField(
            "priority must be normal, urgent or emergency", field="priority"
        ) from None


def _default_title(account: Account, tz: ZoneInfo) -> str:
    who = account.display_name or account.username
    return f"생방송 {datetime.now(UTC).astimezone(tz):%Y-%m-%d %H:%M} ({who})"


async def publish(request: web.Request) -> web.Response:
    """``POST /api/v1/live/publish`` → the SDP answer of a new live session."""
    account = await require_account(request)
    data = await json_body(
        request,
        allowed=("sdp", "type", "targets", "priority", "chime", "title"),
        required=("sdp", "type", "targets"),
    )
    targets = Targets.from_json(data["targets"])
    priority = _priority(data)
    chime = bool_field(data, "chime", default=False)
    service = request.app[LIVE]
    title = text_field(data, "title", max_len=200, required=False) or _default_title(
        account, service.config.tz
    )
    sdp = data["sdp"]
    check_offer(sdp, data["type"])
    session, answer = await service.publish(
        account, targets, priority, chime, title, sdp, data["type"]
    )
    return web.json_response({"sdp": answer, "type": "answer", **session.to_json()}, status=201)


async def hang_up(request: web.Request) -> web.Response:
    """``DELETE /api/v1/live/sessions/{id}``: end a live session now."""
    account = await require_account(request)
    raw = request.match_info["id"]
    service = request.app[LIVE]
    session = service.sessions.get(int(raw)) if raw.isdigit() else None
    if session is None or (session.account_id != account.id and account.role != "admin"):
        raise UnknownSession(f"no live session {raw}")
    await service.end_session(session, "hung up")
    return web.json_response(session.to_json())


async def sessions(request: web.Request) -> web.Response:
    """``GET /api/v1/live/sessions``: the live sessions now on air that this account may see."""
    account = await require_account(request)
    mine = [
        s.to_json()
        for s in request.app[LIVE].sessions.values()
        if account.role == "admin" or s.account_id == account.id
    ]
    return web.json_response({"items": mine})


async def listen(request: web.Request) -> web.Response:
    """``POST /api/v1/live/listen/{village}`` → the SDP answer of a WebRTC listener."""
    client = await stream_client(request)
    wanted = request.match_info["village"]
    village = client.village_code if wanted == "me" else wanted
    if village != client.village_code:
        raise WrongVillage(f"this token listens to {client.village_code!r} only")
    data = await json_body(request, allowed=("sdp", "type"), required=("sdp", "type"))
    check_offer(data["sdp"], data["type"])
    listener_id = client.id if isinstance(client, Listener) else None
    answer = await request.app[LIVE].listen(village, data["sdp"], data["type"], listener_id)
    return web.json_response({"sdp": answer, "type": "answer"})


# --- Icecast source clients -------------------------------------------------------------------

_TAP = web.RequestKey("live_source_tap", StreamTap)


def _take_over(request: web.Request) -> StreamTap:
    """Read the connection's raw body ourselves (aiohttp reads an unframed PUT body as empty)."""
    tap = request.get(_TAP)
    if tap is None:
        tap = StreamTap.take_over(request.transport, request.protocol)
        request[_TAP] = tap
    return tap


async def _source_expect(request: web.Request) -> None:
    """``Expect: 100-continue``: take the connection over now; answer 100 only once authorized."""
    _take_over(request)


async def _source_account(request: web.Request, username: str, token: str) -> Account:
    async with request.app[SESSIONMAKER]() as db:
        account = await store.account_by_api_token(db, token)
        await db.commit()
    if account is None or account.username != username:
        raise SourceAuthFailed("wrong username or API token")
    return account


@stream_slot
async def source(request: web.Request) -> web.StreamResponse:
    """``PUT``/``SOURCE /live/{village}.mp3``: an Icecast source client goes live in a village."""
    tap = _take_over(request)  # first, before the loop hands more bytes to aiohttp's parser
    village = request.match_info["village"]
    service = request.app[LIVE]
    try:
        head = parse_source_request(request.headers)
        account = await _source_account(request, head.username, head.password)
        priority = _priority({"priority": request.query.get("priority", "normal")})
        title = head.name or _default_title(account, service.config.tz)
        session = await service.open_session(
            account, Targets(villages=(village,)), kind="source", priority=priority,
            chime=False, title=title,
        )  # fmt: skip
    except VillagecastError as exc:
        refusal = from_error(exc, request)
        if isinstance(exc, SourceAuthFailed):
            refusal.headers["WWW-Authenticate"] = 'Basic realm="villagecast source"'
        refusal.force_close()
        return refusal
    if head.expects_continue and request.transport is not None:
        request.transport.write(CONTINUE)
    response = web.StreamResponse(status=200, headers={"Server": "villagecast"})
    response.force_close()
    transcoder = SourceTranscoder(session.output.push_mp3, input_format_of(head.content_type))
    reason = "source closed"
    try:
        await response.prepare(request)
        await transcoder.start()
        while True:
            try:
                data = await tap.read(SOURCE_IDLE_S)
            except TimeoutError:
                reason = "source mute"
                break
            if not data:
                break
            if not await transcoder.write(data):
                reason = "transcoder failed"
                break
            if session.output.feeds_ended:
                reason = "ended on every channel"  # cancelled or preempted everywhere
                break
    finally:
        await transcoder.close()
        await service.end_session(session, reason)
    return response


# --- wiring ---------------------------------------------------------------------------------------


async def _live_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    with pinned_host_addresses(host_addresses_for(settings.host)):
        await app[LIVE].recover()
        yield
        await app[LIVE].close()


def setup(app: web.Application) -> None:
    """Register the live routes and the live service."""
    app[LIVE] = service = LiveService(app)
    app[streams.HUB].add_report_listener(service.on_report)
    app.cleanup_ctx.append(_live_ctx)
    app.router.add_post("/api/v1/live/publish", publish)
    app.router.add_get("/api/v1/live/sessions", sessions)
    app.router.add_delete("/api/v1/live/sessions/{id:[0-9]+}", hang_up)
    app.router.add_delete("/api/v1/live/publish/{id:[0-9]+}", hang_up)  # what the console calls
    app.router.add_post("/api/v1/live/listen/{village}", listen)
    app.router.add_route("PUT", "/live/{village}.mp3", source, expect_handler=_source_expect)
    app.router.add_route("SOURCE", "/live/{village}.mp3", source)

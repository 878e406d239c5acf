"""Live sessions (생방송): a broadcast already playing, with the same rules, rows and report.

A session (a WebRTC publisher or an Icecast source client) is planned by the one planner like a
broadcast starting now (:meth:`broadcast.onair.OnAir.open_live`: rights, targets, quiet hours,
priority), gets its rows (a placeholder announcement, one ``dispatched`` occurrence per village),
and one live item per village through the :class:`~streaming.items.ChannelPort`. Its audio is
encoded once (``streaming.live_encode.SessionOutput``) into every village's feed and a recording
under ``data/live/``, archived when the session ends (or at the next start after a crash).

WebRTC listeners are readers of the channel (one decoder and one Opus encoder per village,
``streaming.webrtc.ChannelListen``); each resident is noted on the port while connected, so the
channel's own reports carry them and the dispatcher writes them with the rest of the delivery (one
writer of each row).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiortc import RTCPeerConnection
from aiortc.rtcrtpsender import RTCRtpSender
from av.audio.frame import AudioFrame

from devices.targets import Targets
from streaming.items import ItemRef, PlayItem, Priority
from streaming.live_encode import LiveSink, SessionOutput
from streaming.webrtc import (
    ChannelListen,
    PacketTrack,
    PcmTrack,
    PublishPeer,
    TooManyWebRtcListeners,
    add_public_candidates,
    answer_offer,
    ice_configuration,
)

from . import store
from .dispatcher import Media
from .errors import UnknownSession
from .planner import Actor, AirRequest, Plan, Staff

if TYPE_CHECKING:
    from .onair import OnAir

__all__ = ["Ingest", "LiveConfig", "LiveDesk", "LiveRows", "LiveSession"]

log = logging.getLogger(__name__)

GATHER_TIMEOUT_S = 2.5  # ICE gathering (no trickle): never wait longer
PUBLISH_IDLE_S = 3.0  # no audio frames for this long: the publisher is gone


class Ingest(Protocol):
    """Where a session's recording goes when it ends (``recordings.service.IngestService``)."""

    async def submit_file(
        self,
        path: Path,
        *,
        title: str,
        source: str,
        created_by: int | None,
        region_code: str | None,
        original_name: str | None = None,
    ) -> int:
        """Take ownership of a file and queue it; the new announcement's id."""
        ...


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """What live sessions need of the settings (built once)."""

    recordings_dir: Path
    ice_urls: tuple[str, ...] = ()
    public_address: str = ""  # an extra host candidate (1:1 NAT); empty on loopback
    webrtc_listeners_per_channel: int = 50


@dataclass(frozen=True, slots=True)
class LiveRows:
    """The rows of a live broadcast: its id, the placeholder, each village's item, the plan."""

    broadcast_id: int
    placeholder_id: int
    refs: dict[str, ItemRef]  # village → item
    plan: Plan | None = None


@dataclass(eq=False)
class LiveSession:
    """One live session: its broadcast rows, its encoded output and how it ends."""

    id: int
    kind: str  # webrtc | source
    account_id: int | None
    region_code: str | None
    title: str
    rows: LiveRows
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
            "broadcast_id": self.rows.broadcast_id,
            "villages": sorted(self.rows.refs),
            "placements": self.placements,
            "chime_s": self.chime_s,
            "title": self.title,
            "started_at": self.started_at.isoformat(),
            "bytes": self.output.bytes,
            "ended": self.ended.is_set(),
            "end_reason": self.end_reason,
            "announcement_id": self.announcement_id,
        }


class LiveDesk:
    """Every live session and WebRTC listener of this server (a part of :class:`OnAir`)."""

    def __init__(
        self, onair: OnAir, media: Media, ingest: Ingest | None, config: LiveConfig | None
    ) -> None:
        self.onair = onair
        self.media = media
        self.ingest = ingest
        self.config = config or LiveConfig(Path("live"))
        self.sessions: dict[int, LiveSession] = {}
        self.channels: dict[str, ChannelListen] = {}  # WebRTC readers per village
        self.listen_peers: set[RTCPeerConnection] = set()
        self._listener_of: dict[RTCPeerConnection, int] = {}  # pc → listener id
        # False only in benchmarks: each WebRTC listener gets its own Opus encoder (aiortc's way)
        self.shared_encoder = True
        self._ids = itertools.count(1)
        self._reader_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- sessions --------------------------------------------------------------------------------

    async def open_session(
        self, actor: Actor, targets: Targets, *, kind: str, priority: Priority, chime: bool,
        title: str,
    ) -> LiveSession:  # fmt: skip
        """Plan like a broadcast starting now, add its rows, and open a feed per village."""
        rows = await self.onair.open_live(actor, _request(targets, priority, chime), title)
        return await self._open(kind, actor, rows, title, priority, chime)

    async def _open(
        self, kind: str, actor: Actor, rows: LiveRows, title: str, priority: Priority, chime: bool
    ) -> LiveSession:
        now = self.onair.clock.now()
        folder = self.config.recordings_dir
        recording = folder / f"{now:%Y%m%dT%H%M%S}-{rows.broadcast_id}.mp3"
        placements: dict[str, str] = {}
        feeds: list[LiveSink] = []
        for village, ref in sorted(rows.refs.items()):
            placement, feed = await self.onair.channels.open_live(
                PlayItem.of(ref, title, (), priority)
            )
            placements[village] = placement.outcome
            feeds.append(feed)
        account = actor.account if isinstance(actor, Staff) else None
        session = LiveSession(
            id=next(self._ids),
            kind=kind,
            account_id=account.id if account else None,
            region_code=account.region_code if account else None,
            title=title,
            rows=rows,
            output=SessionOutput(feeds, recording),
            started_at=now,
            placements=placements,
        )
        self.sessions[session.id] = session
        if chime:
            intro, session.outro = await self._chime_frames(priority)
            session.chime_s = round(session.output.play_jingle(intro, hold=True), 2)
        return session

    async def _chime_frames(self, priority: Priority) -> tuple[list[bytes], list[bytes]]:
        """The opening and closing chime as channel MP3 frames (read off the loop, cached)."""
        try:
            paths = self.media.chime_parts(priority >= Priority.EMERGENCY)
            if paths is None:
                return [], []
            load = self.onair.channels.load_audio
            return await load(paths[0]), await load(paths[1])
        except Exception:
            log.exception("chimes unavailable; going live without them")
            return [], []

    def session_of(self, session_id: int, account_id: int, admin: bool) -> LiveSession:
        """A session its publisher (or an admin) may hang up; others answer like unknown ones."""
        session = self.sessions.get(session_id)
        if session is None or (session.account_id != account_id and not admin):
            raise UnknownSession(f"no live session {session_id}")
        return session

    def visible_sessions(self, account_id: int, admin: bool) -> list[LiveSession]:
        """The sessions on air an account may see (its own; admins every one)."""
        return [s for s in self.sessions.values() if admin or s.account_id == account_id]

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
            async with self.onair.sessionmaker() as db:
                if recording.bytes == 0 or self.ingest is None:
                    recording.path.unlink(missing_ok=True)
                    await store.drop_live_placeholder(
                        db, session.rows.placeholder_id, "nothing was said"
                    )
                else:
                    announcement_id = await self.ingest.submit_file(
                        recording.path,
                        title=session.title,
                        source="live",
                        created_by=session.account_id,
                        region_code=session.region_code,
                        original_name=recording.path.name,
                    )
                    session.announcement_id = announcement_id
                    await store.attach_live_recording(
                        db, session.rows.broadcast_id, session.rows.placeholder_id, announcement_id
                    )
                await db.commit()
        except Exception:
            log.exception("could not archive live session %s", session.id)
        finally:
            self.sessions.pop(session.id, None)

    async def recover(self) -> int:
        """Archive the recordings of sessions cut off by a crash or restart; how many."""
        folder = self.config.recordings_dir
        paths = await asyncio.to_thread(_recordings, folder)
        recovered = 0
        for path, size in paths:
            match = re.fullmatch(r".*-(\d+)\.mp3", path.name)
            found = None
            if match is not None and size > 0:
                async with self.onair.sessionmaker() as db:
                    found = await store.interrupted_live(db, int(match[1]))
            if found is None or self.ingest is None:
                path.unlink(missing_ok=True)
                continue
            b, placeholder = found
            rows = LiveRows(b.id, placeholder.id, {})
            title, author, region = b.title, b.created_by, placeholder.region_code
            try:
                announcement_id = await self.ingest.submit_file(
                    path, title=title, source="live", created_by=author, region_code=region,
                    original_name=path.name,
                )  # fmt: skip
                async with self.onair.sessionmaker() as db:
                    await store.attach_live_recording(
                        db, rows.broadcast_id, rows.placeholder_id, announcement_id
                    )
                    await db.commit()
                recovered += 1
            except Exception:
                log.exception("could not recover the live recording %s", path.name)
        if recovered:
            log.warning("archived %d live recording(s) cut off by a restart", recovered)
        return recovered

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background task that the desk cancels on shutdown."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(
        self, actor: Actor, targets: Targets, priority: Priority, chime: bool, title: str,
        sdp: str, kind: str,
    ) -> tuple[LiveSession, str]:  # fmt: skip
        """A WebRTC publisher: planned and recorded like a broadcast, negotiated, on air."""
        rows = await self.onair.open_live(actor, _request(targets, priority, chime), title)
        opened: list[LiveSession] = []

        def on_frame(frame: AudioFrame) -> None:
            if opened:
                session = opened[0]
                session.output.push_frame(frame)
                if session.output.feeds_ended and not session.ended.is_set():
                    self.spawn(self.end_session(session, "ended on every channel"))

        peer = PublishPeer(
            ice_configuration(list(self.config.ice_urls)), on_frame, idle_timeout_s=PUBLISH_IDLE_S
        )
        try:
            answer = await peer.answer(sdp, kind, GATHER_TIMEOUT_S)
        except BaseException:
            await peer.close()
            await self._abandon(rows)
            raise
        session = await self._open("webrtc", actor, rows, title, priority, chime)
        session.peer = peer
        opened.append(session)
        self.spawn(self._watch(session, peer))
        return session, add_public_candidates(answer.sdp, self.config.public_address)

    async def _abandon(self, rows: LiveRows) -> None:
        """The session never went on air (its negotiation failed): remove its rows."""
        async with self.onair.sessionmaker() as db:
            await store.delete_live(db, rows.broadcast_id, rows.placeholder_id)
            await db.commit()

    async def _watch(self, session: LiveSession, peer: PublishPeer) -> None:
        reason = await peer.wait_ended()
        await self.end_session(session, reason)

    # --- WebRTC listeners ------------------------------------------------------------------------

    async def listen(
        self, village: str, sdp: str, kind: str, listener_id: int | None = None
    ) -> str:
        """A WebRTC listener of a village channel: the answer SDP."""
        port = self.onair.channels
        channel = self.channels.get(village)
        present = channel.listeners if channel is not None else 0
        if present >= self.config.webrtc_listeners_per_channel:
            raise TooManyWebRtcListeners(
                f"{present} WebRTC listeners already; "
                f"listen at /hls/{village}/live.m3u8 or /live/{village}.mp3",
                hls=f"/hls/{village}/live.m3u8",
                mp3=f"/live/{village}.mp3",
            )
        if channel is None:
            channel = self.channels[village] = ChannelListen(village)
            await port.add_reader(village, channel.feed_mp3)
        pc = RTCPeerConnection(ice_configuration(list(self.config.ice_urls)))
        track: PacketTrack | PcmTrack = (
            channel.fanout.add_listener() if self.shared_encoder else channel.add_pcm_listener()
        )
        _prefer_opus(pc, pc.addTrack(track))
        self.listen_peers.add(pc)
        reader_id = -next(self._reader_ids)  # apart from the Ogg mount's connection ids
        if listener_id is not None:
            self._listener_of[pc] = listener_id
            await port.note_listener(village, listener_id, reader_id)

        async def closed() -> None:
            if pc not in self.listen_peers:
                return
            track.stop()
            self.listen_peers.discard(pc)
            self._listener_of.pop(pc, None)
            if listener_id is not None:
                await port.note_listener(village, listener_id, reader_id, present=False)
            await pc.close()
            await self._release(village)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await closed()

        try:
            answer = await answer_offer(pc, sdp, kind, GATHER_TIMEOUT_S)
        except BaseException:
            await closed()
            raise
        return add_public_candidates(answer.sdp, self.config.public_address)

    @property
    def listener_ids(self) -> set[int]:
        """The residents listening over WebRTC now."""
        return set(self._listener_of.values())

    async def close_listener(self, listener_id: int) -> int:
        """End a revoked listener's WebRTC listens; how many were open."""
        peers = [pc for pc, lid in self._listener_of.items() if lid == listener_id]
        for pc in peers:
            await pc.close()  # its connectionstatechange runs the cleanup above
        return len(peers)

    async def _release(self, village: str) -> None:
        channel = self.channels.get(village)
        if channel is not None and channel.listeners == 0:
            del self.channels[village]
            await self.onair.channels.remove_reader(village, channel.feed_mp3)

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
            await self.onair.channels.remove_reader(village, channel.feed_mp3)
        self.channels.clear()


def _request(targets: Targets, priority: Priority, chime: bool) -> AirRequest:
    return AirRequest(None, targets, priority=priority, chime=chime)


def _prefer_opus(pc: RTCPeerConnection, sender: RTCRtpSender) -> None:
    """Offer only Opus: the shared packets are Opus, whatever else the phone could take."""
    caps = RTCRtpSender.getCapabilities("audio")
    opus = [c for c in caps.codecs if c.mimeType.lower() == "audio/opus"]
    for transceiver in pc.getTransceivers():
        if transceiver.sender is sender:
            transceiver.setCodecPreferences(opus)


def _recordings(folder: Path) -> list[tuple[Path, int]]:
    """The recordings left in the folder, with their sizes (blocking: run in a thread)."""
    if not folder.is_dir():
        return []
    return [(p, p.stat().st_size) for p in sorted(folder.glob("*.mp3"))]

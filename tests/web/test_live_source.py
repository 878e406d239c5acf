"""Icecast source clients: the real ffmpeg ``icecast://`` client (PUT and legacy SOURCE)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broadcast.models import Broadcast
from devices import store
from tests.audio import decode_pcm, loud_seconds, speech_wav
from tests.web.test_live import OTHER, TARGET, http_player, make_device, wait_no_sessions
from web.api_announcements import INGEST
from web.keys import SESSIONMAKER
from web.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A test server without quiet hours (tests run at any hour of the day in Korea)."""
    return Settings(data_dir=tmp_path / "data", log_format="text", quiet_hours="")


async def make_source_account(client: Any, role: str, region: str) -> tuple[str, str]:
    """A staff account and one of its API tokens: what a source client logs in with."""
    async with client.app[SESSIONMAKER]() as session:
        account = await store.create_account(
            session, f"media-{role}", "correct horse battery", role, region
        )
        issued = await store.create_api_token(session, account, "butt")
        await session.commit()
    return account.username, issued.token


async def ffmpeg_source(url: str, wav: Path, *extra: str, fmt: str = "mp3") -> tuple[int, str]:
    """Stream a WAV file in real time to an Icecast URL with ffmpeg; (exit code, stderr)."""
    codec = ["-c:a", "libvorbis", "-content_type", "audio/ogg"] if fmt == "ogg" else []
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i", str(wav),
        "-ac", "2", "-ar", "44100", "-b:a", "128k", *codec, *extra, "-f", fmt, url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, err.decode(errors="replace")


@pytest.mark.parametrize(
    ("legacy", "fmt"),
    [(False, "mp3"), (True, "mp3"), (False, "ogg")],
    ids=["PUT-mp3", "SOURCE-mp3", "PUT-ogg-vorbis"],
)
async def test_ffmpeg_icecast_client_goes_live_in_a_village(
    client: Any, admin_headers: dict[str, str], tmp_path: Path, legacy: bool, fmt: str
) -> None:
    speech = speech_wav(tmp_path / "speech.wav")
    spoken_s = loud_seconds(decode_pcm(speech))
    username, token = await make_source_account(client, "district", "goseong-eup")
    box, other_box = await make_device(client, TARGET), await make_device(client, OTHER)
    base = str(client.make_url("/live"))
    host = client.make_url("/").host
    port = client.make_url("/").port
    heard, not_heard = tmp_path / "heard.wav", tmp_path / "other.wav"
    extra = ("-legacy_icecast", "1") if legacy else ()
    async with (
        http_player(f"{base}/{TARGET}.mp3?token={box}", heard, 25),
        http_player(f"{base}/{OTHER}.mp3?token={other_box}", not_heard, 25),
    ):
        await asyncio.sleep(1.0)
        code, err = await ffmpeg_source(
            f"icecast://{username}:{token}@{host}:{port}/live/{TARGET}.mp3",
            speech,
            *extra,
            fmt=fmt,
        )
        assert code == 0, err
        await wait_no_sessions(client, admin_headers, 10)
        await asyncio.sleep(1.0)
    assert loud_seconds(decode_pcm(heard)) >= 0.6 * spoken_s
    assert loud_seconds(decode_pcm(not_heard)) == 0.0

    async with client.app[SESSIONMAKER]() as session:
        broadcast = (await session.scalars(select(Broadcast))).one()
        assert broadcast.villages == [TARGET]
    assert await client.app[INGEST].wait_ready(broadcast.announcement_id, 60) == "ready"


async def test_wrong_source_credentials_are_refused(client: Any, tmp_path: Path) -> None:
    username, token = await make_source_account(client, "district", "goseong-eup")
    wav = speech_wav(tmp_path / "s.wav", "안녕")
    url = client.make_url("/")
    code, err = await ffmpeg_source(
        f"icecast://{username}:wrong-token@{url.host}:{url.port}/live/{TARGET}.mp3", wav
    )
    assert code != 0
    assert "401" in err
    code, err = await ffmpeg_source(
        f"icecast://someone-else:{token}@{url.host}:{url.port}/live/{TARGET}.mp3",
        wav,
        "-legacy_icecast",
        "1",
    )
    assert code != 0
    resp = await client.put(f"/live/{TARGET}.mp3", data=b"\xff\xfb" * 100)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_a_source_outside_the_accounts_region_is_forbidden(
    client: Any, tmp_path: Path
) -> None:
    username, token = await make_source_account(client, "village", OTHER)
    url = client.make_url("/")
    code, err = await ffmpeg_source(
        f"icecast://{username}:{token}@{url.host}:{url.port}/live/{TARGET}.mp3",
        speech_wav(tmp_path / "s.wav", "안녕"),
    )
    assert code != 0
    assert "403" in err


async def test_a_butt_style_source_waits_for_200_then_streams(
    client: Any, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    """BUTT's legacy mode: ``SOURCE … HTTP/1.0``, wait for the answer, then stream; ice-name."""
    import base64

    from tests.audio import channel_mp3, tone_wav

    username, token = await make_source_account(client, "district", "goseong-eup")
    mp3 = channel_mp3(tone_wav(tmp_path / "t.wav", 3.0, level_dbfs=-12), tmp_path / "t.mp3")
    url = client.make_url("/")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    auth = base64.b64encode(f"{username}:{token}".encode()).decode()
    writer.write(
        (
            f"SOURCE /live/{TARGET}.mp3 HTTP/1.0\r\nAuthorization: Basic {auth}\r\n"
            "Content-Type: audio/mpeg\r\nice-name: 군청 미디어팀\r\nice-public: 0\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    assert status.split()[1] == b"200", status
    data = mp3.read_bytes()
    for i in range(0, len(data), 2400):  # 64 kbps: 2400 bytes are 0.3 s
        writer.write(data[i : i + 2400])
        await writer.drain()
        await asyncio.sleep(0.3)
    writer.close()
    await writer.wait_closed()
    await wait_no_sessions(client, admin_headers, 10)
    async with client.app[SESSIONMAKER]() as session:
        broadcast = (await session.scalars(select(Broadcast))).one()
    assert broadcast.title == "군청 미디어팀"
    assert await client.app[INGEST].wait_ready(broadcast.announcement_id, 60) == "ready"

"""Announcements through the real app: every accepted format, loudness, tags, TTS, list, replay."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mutagen.id3 import ID3
from mutagen.oggopus import OggOpus

from devices import store as dstore
from devices.models import Account
from recordings.models import Announcement
from tests.audio import ffprobe, integrated_lufs
from tests.recordings import conftest as audio_fixtures
from tests.web.replay_helpers import played
from web.api_announcements import INGEST
from web.keys import SESSIONMAKER

pytestmark = pytest.mark.ffmpeg

audio_dir = audio_fixtures.audio_dir
speech = audio_fixtures.speech
encoded = audio_fixtures.encoded


def form_of(data: bytes, filename: str, title: str | None = "경로잔치 안내") -> aiohttp.FormData:
    """A multipart upload form."""
    form = aiohttp.FormData()
    if title is not None:
        form.add_field("title", title)
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    return form


async def upload(
    client: Any, headers: dict[str, str], path: Path, *, filename: str | None = None,
    title: str = "경로잔치 안내",
) -> Any:  # fmt: skip
    """POST a file as the ``file`` field."""
    data = await asyncio.to_thread(path.read_bytes)
    form = form_of(data, filename or path.name, title)
    return await client.post("/api/v1/announcements", data=form, headers=headers)


async def ready(client: Any, headers: dict[str, str], announcement_id: int) -> dict[str, Any]:
    """Wait for the announcement to finish and return its JSON."""
    status = await client.app[INGEST].wait_ready(announcement_id, timeout=120)
    resp = await client.get(f"/api/v1/announcements/{announcement_id}", headers=headers)
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    assert body["status"] == status
    return body


def speech_seconds(path: Path) -> float:
    """Duration of a file as ffprobe reports it."""
    return float(ffprobe(path)["format"]["duration"])


def rendition_file(client: Any, body: dict[str, Any], fmt: str) -> Path:
    """The archived file of a rendition."""
    return client.app[INGEST].archive_root / _rel(client, body, fmt)


def _rel(client: Any, body: dict[str, Any], fmt: str) -> str:
    sha = body["renditions"][fmt]["sha256"]
    return f"renditions/{sha[:2]}/{sha}.{fmt}"


# name → ffmpeg output arguments. AMR-NB/WB decode in Debian's ffmpeg but it has no AMR
# encoder, so 3GP is tested with AAC inside.
FORMATS: dict[str, tuple[str, ...]] = {
    "speech.mp3": ("-c:a", "libmp3lame", "-b:a", "128k"),
    "speech.m4a": ("-c:a", "aac", "-b:a", "96k"),
    "speech.aac": ("-c:a", "aac", "-b:a", "96k"),  # raw ADTS: duration only estimated
    "speech-opus.ogg": ("-c:a", "libopus", "-b:a", "48k", "-f", "ogg"),
    "speech-vorbis.ogg": ("-c:a", "libvorbis", "-q:a", "3"),
    "speech.webm": ("-c:a", "libopus", "-b:a", "48k", "-f", "webm"),
    "speech.flac": ("-c:a", "flac"),
    "speech.3gp": ("-c:a", "aac", "-ar", "16000", "-ac", "1", "-b:a", "32k", "-f", "3gp"),
    "speech-stereo44k.wav": ("-ac", "2", "-ar", "44100", "-c:a", "pcm_s16le"),
}


@pytest.mark.parametrize("name", ["speech.wav", *FORMATS])
async def test_every_accepted_format_is_normalised_into_both_renditions(
    client: Any, admin_headers: dict[str, str], speech: Path, encoded: Callable[..., Path],
    name: str,
) -> None:  # fmt: skip
    path = speech if name == "speech.wav" else encoded(name, *FORMATS[name])
    resp = await upload(client, admin_headers, path)
    assert resp.status == 202, await resp.text()
    body = await ready(client, admin_headers, (await resp.json())["id"])
    assert body["status"] == "ready", body
    expected_s = speech_seconds(speech)
    assert body["duration_s"] == pytest.approx(expected_s, abs=0.5)
    assert body["loudness_lufs"] == pytest.approx(-16, abs=1)
    assert body["true_peak_dbtp"] <= -1.0

    mp3 = rendition_file(client, body, "mp3")
    info = ffprobe(mp3)
    stream = info["streams"][0]
    assert (stream["codec_name"], stream["channels"], stream["sample_rate"]) == ("mp3", 1, "48000")
    assert int(stream["bit_rate"]) == 64000
    assert float(info["format"]["duration"]) == pytest.approx(expected_s, abs=0.5)
    assert integrated_lufs(mp3) == pytest.approx(-16, abs=1)
    assert body["renditions"]["mp3"]["bytes"] == mp3.stat().st_size

    opus = rendition_file(client, body, "opus")
    info = ffprobe(opus)
    stream = info["streams"][0]
    assert (stream["codec_name"], stream["channels"]) == ("opus", 1)
    assert info["format"]["format_name"] == "ogg"
    assert float(info["format"]["duration"]) == pytest.approx(expected_s, abs=0.5)
    assert integrated_lufs(opus) == pytest.approx(-16, abs=1)
    assert 24 <= body["renditions"]["opus"]["bitrate"] <= 48


@pytest.fixture(scope="session")
def mediarecorder_webm(audio_dir: Path, speech: Path) -> Path:
    """WebM/Opus without a duration in its container, like a browser's MediaRecorder makes."""
    path = audio_dir / "mediarecorder.webm"
    if not path.exists():
        with path.open("wb") as out:  # written to a pipe, ffmpeg cannot go back to add it
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-i", str(speech), "-c:a", "libopus",
                 "-f", "webm", "pipe:1"],
                stdout=out, check=True, timeout=60,
            )  # fmt: skip
    assert "duration" not in ffprobe(path)["format"]
    return path


async def test_browser_webm_without_duration_is_accepted(
    client: Any, admin_headers: dict[str, str], speech: Path, mediarecorder_webm: Path
) -> None:
    path = mediarecorder_webm
    resp = await upload(client, admin_headers, path)
    assert resp.status == 202, await resp.text()
    body = await ready(client, admin_headers, (await resp.json())["id"])
    assert body["status"] == "ready"
    assert body["duration_s"] == pytest.approx(speech_seconds(speech), abs=0.5)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("quiet.wav", ("-af", "volume=-30dB", "-c:a", "pcm_s16le")),
        ("clipped.wav", ("-af", "volume=+25dB", "-c:a", "pcm_s16le")),  # hard clipping
    ],
    ids=["30dB-too-quiet", "clipped-too-loud"],
)
async def test_quiet_and_clipped_recordings_come_out_at_minus_16_lufs(
    client: Any, admin_headers: dict[str, str], encoded: Callable[..., Path], name: str,
    args: tuple[str, ...],
) -> None:  # fmt: skip
    path = encoded(name, *args)
    source = integrated_lufs(path)
    assert abs(source + 16) > 6  # the input really is far off
    resp = await upload(client, admin_headers, path)
    body = await ready(client, admin_headers, (await resp.json())["id"])
    assert body["status"] == "ready", body
    for fmt in ("mp3", "opus"):
        assert integrated_lufs(rendition_file(client, body, fmt)) == pytest.approx(-16, abs=1)
    assert body["true_peak_dbtp"] <= -1.0


async def test_renditions_are_tagged(
    client: Any, make_staff: Callable[..., Any], speech: Path
) -> None:
    headers = await make_staff("village", "goseong-eup-seongnae-ri")
    resp = await upload(client, headers, speech, title="성내리 경로잔치")
    body = await ready(client, headers, (await resp.json())["id"])
    id3 = ID3(rendition_file(client, body, "mp3"))
    assert str(id3["TIT2"]) == "성내리 경로잔치"
    assert str(id3["TPE1"]) == "성내리 마을방송"  # the office, never the staff member's username
    assert str(id3["TXXX:region"]) == "성내리 (goseong-eup-seongnae-ri)"
    assert str(id3["TDRC"]) == body["created_at"][:10]
    assert id3.getall("COMM")
    raw = rendition_file(client, body, "mp3").read_bytes()
    assert raw[:3] == b"ID3"
    assert raw[-128:-125] != b"TAG"  # no ID3v1 at the end
    opus = OggOpus(rendition_file(client, body, "opus"))
    assert opus.tags is not None
    assert opus.tags["TITLE"] == ["성내리 경로잔치"]
    assert opus.tags["REGION"] == ["성내리 (goseong-eup-seongnae-ri)"]
    assert opus.tags["DATE"] == [body["created_at"][:10]]
    assert opus.tags["ARTIST"] == ["성내리 마을방송"]
    async with client.app[SESSIONMAKER]() as session:
        row = await session.get(Announcement, body["id"])
        assert row is not None
        author = await session.get(Account, row.created_by)
        assert author is not None
    username = author.username.encode()
    assert username not in raw
    assert username not in rendition_file(client, body, "opus").read_bytes()


async def test_text_is_spoken_in_korean_and_normalised(
    client: Any, admin_headers: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/announcements",
        json={
            "title": "태풍 경보",
            "text": "2026년 11월 25일 오전 10시, 태풍 경보가 발령되었습니다.",
        },
        headers=admin_headers,
    )
    assert resp.status == 202, await resp.text()
    body = await ready(client, admin_headers, (await resp.json())["id"])
    assert body["status"] == "ready", body
    assert body["source"] == "tts"
    assert body["text"].startswith("2026년")
    assert body["duration_s"] > 2
    assert integrated_lufs(rendition_file(client, body, "mp3")) == pytest.approx(-16, abs=1)


async def test_identical_uploads_share_one_original(
    client: Any, admin_headers: dict[str, str], speech: Path
) -> None:
    first = await ready(
        client, admin_headers, (await (await upload(client, admin_headers, speech)).json())["id"]
    )
    second = await ready(
        client, admin_headers, (await (await upload(client, admin_headers, speech)).json())["id"]
    )
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    originals = list((client.app[INGEST].archive_root / "originals").rglob("*.*"))
    assert len(originals) == 1
    assert originals[0].name == f"{first['sha256']}.wav"


async def test_ten_uploads_at_once_all_finish(
    client: Any, admin_headers: dict[str, str], encoded: Callable[..., Path]
) -> None:
    path = encoded("speech-ten.mp3", "-c:a", "libmp3lame", "-b:a", "96k")
    responses = await asyncio.gather(
        *(upload(client, admin_headers, path, title=f"안내 {i}") for i in range(10))
    )
    ids = [(await r.json())["id"] for r in responses]
    assert all(r.status == 202 for r in responses)
    bodies = await asyncio.gather(*(ready(client, admin_headers, i) for i in ids))
    assert [b["status"] for b in bodies] == ["ready"] * 10
    assert len({b["title"] for b in bodies}) == 10


async def test_list_is_newest_first_paged_and_searchable(
    client: Any, admin_headers: dict[str, str], speech: Path
) -> None:
    ids = []
    for title in ("수도 공사 안내", "경로잔치 안내", "예방접종 안내"):
        ids.append((await (await upload(client, admin_headers, speech, title=title)).json())["id"])
    resp = await client.get("/api/v1/announcements?limit=2", headers=admin_headers)
    page = await resp.json()
    assert page["total"] == 3
    assert [a["id"] for a in page["items"]] == [ids[2], ids[1]]
    resp = await client.get("/api/v1/announcements?limit=2&offset=2", headers=admin_headers)
    assert [a["id"] for a in (await resp.json())["items"]] == [ids[0]]
    resp = await client.get("/api/v1/announcements?q=경로", headers=admin_headers)
    assert [a["title"] for a in (await resp.json())["items"]] == ["경로잔치 안내"]
    for bad in ("limit=0", "limit=x", "offset=-1"):
        resp = await client.get(f"/api/v1/announcements?{bad}", headers=admin_headers)
        assert resp.status == 422
    for i in ids:
        await client.app[INGEST].wait_ready(i, timeout=120)


async def test_staff_see_their_region_and_below(
    client: Any, make_staff: Callable[..., Any], speech: Path
) -> None:
    village = await make_staff("village", "goseong-eup-seongnae-ri")
    neighbour = await make_staff("village", "goseong-eup-seooe-ri")
    district = await make_staff("district", "goseong-eup")
    other_district = await make_staff("district", "hail-myeon")
    admin = await make_staff("admin", "48820")
    created = await (await upload(client, village, speech)).json()
    url = f"/api/v1/announcements/{created['id']}"
    for headers, status in (
        (village, 200), (district, 200), (admin, 200), (neighbour, 404), (other_district, 404),
    ):  # fmt: skip
        assert (await client.get(url, headers=headers)).status == status
    listed = await (await client.get("/api/v1/announcements", headers=neighbour)).json()
    assert listed["total"] == 0
    await client.app[INGEST].wait_ready(created["id"], timeout=120)


async def test_replay_supports_range_etag_and_counts_listeners(
    client: Any, admin_headers: dict[str, str], speech: Path
) -> None:
    body = await ready(
        client, admin_headers, (await (await upload(client, admin_headers, speech)).json())["id"]
    )
    async with client.app[SESSIONMAKER]() as session:
        listener, token = await dstore.create_listener(
            session, "goseong-eup-seongnae-ri", "박씨", True
        )
        await session.commit()
    url = f"/media/announcements/{body['id']}.mp3"
    assert (await client.get(url, params={"token": token})).status == 404  # not broadcast there
    await played(client.app, body["id"], "goseong-eup-seongnae-ri")
    resp = await client.get(url, params={"token": token})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "audio/mpeg"
    assert "max-age" in resp.headers["Cache-Control"]
    assert resp.headers["Last-Modified"]
    etag = resp.headers["ETag"]
    full = await resp.read()
    resp = await client.get(
        url, headers={"Authorization": f"Bearer {token}", "Range": "bytes=100-199"}
    )
    assert resp.status == 206
    assert await resp.read() == full[100:200]
    resp = await client.get(url, params={"token": token}, headers={"If-None-Match": etag})
    assert resp.status == 304
    resp = await client.get(f"/media/announcements/{body['id']}.opus", params={"token": token})
    assert resp.status == 200
    assert (await resp.read())[:4] == b"OggS"
    async with client.app[SESSIONMAKER]() as session:
        from recordings import store

        replays = await store.replays_of(session, body["id"])
    assert list(replays) == [listener.id]


async def test_replay_answers_head_and_refuses_a_bad_range(
    client: Any, admin_headers: dict[str, str], speech: Path
) -> None:
    created = await (await upload(client, admin_headers, speech)).json()
    url = f"/media/announcements/{created['id']}.mp3"
    body = await ready(client, admin_headers, created["id"])
    resp = await client.head(url, headers=admin_headers)
    assert resp.status == 200
    assert int(resp.headers["Content-Length"]) == body["renditions"]["mp3"]["bytes"]
    resp = await client.get(url, headers={**admin_headers, "Range": "bytes=999999999-"})
    assert resp.status == 416
    resp = await client.get(url, headers={**admin_headers, "Range": "pages=1-2"})
    assert resp.status in (200, 416)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/media/announcements/999.mp3", {}, 401),
        ("/media/announcements/1.mp3", {"token": "nonsense"}, 401),
        ("/media/announcements/1.wav", {}, 404),
    ],
)
async def test_replay_refuses_unknown_tokens_and_formats(
    client: Any, path: str, params: dict[str, str], status: int
) -> None:
    resp = await client.get(path, params=params)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"


async def test_unknown_announcement_is_a_404_problem(
    client: Any, admin_headers: dict[str, str]
) -> None:
    for url in ("/api/v1/announcements/424242", "/media/announcements/424242.mp3"):
        resp = await client.get(url, headers=admin_headers)
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["title_en"]
        assert body["title_ko"]


async def test_a_file_that_cannot_be_decoded_ends_failed_with_a_reason(
    client: Any, admin_headers: dict[str, str]
) -> None:
    # submit_file takes files the server made itself (live recordings) without the upload checks.
    service = client.app[INGEST]
    path = service.archive.new_incoming(".mp3")
    await asyncio.to_thread(path.write_bytes, b"\x00garbage, not audio\x00" * 500)
    announcement_id = await service.submit_file(
        path, title="망가진 녹음", source="live", created_by=None, region_code="48820"
    )
    assert await service.wait_ready(announcement_id, timeout=60) == "failed"
    body = await (
        await client.get(f"/api/v1/announcements/{announcement_id}", headers=admin_headers)
    ).json()
    assert body["status"] == "failed"
    assert body["error"]
    assert body["error_ko"]
    assert body["renditions"] == {}
    assert list((service.archive_root / "work").iterdir()) == []

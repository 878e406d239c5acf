"""Upload limits of notices: one file and all files of a request stay within the upload limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broadcast.notice_models import Notice
from tests.web.notice_files import png_bytes
from tests.web.test_notices import SEONGNAE, People, count, send
from web.api_announcements import INGEST
from web.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Uploads limited to 1 MB."""
    return Settings(data_dir=tmp_path / "data", log_format="text", max_upload_mb=1)


@pytest.mark.parametrize(
    "files",
    [
        [("big.png", png_bytes(pad_to=1024 * 1024 + 100), "image/png")],
        [("a.png", png_bytes(pad_to=600_000), "image/png"),
         ("b.png", png_bytes(pad_to=600_000), "image/png")],
    ],
)  # fmt: skip
async def test_uploads_over_the_limit_are_refused_and_leave_nothing(
    client: Any, files: list[tuple[str, bytes, str]]
) -> None:
    people = People(client)
    await people.add("officer", "district", "goseong-eup")
    await people.add("seongnae", "village", SEONGNAE)
    resp = await send(client, people["officer"], title="점검", targets={"villages": [SEONGNAE]},
                      files=files)  # fmt: skip
    assert resp.status == 413, await resp.text()
    assert (await resp.json())["title_ko"]
    assert await count(client, Notice) == 0
    assert list(client.app[INGEST].archive.incoming.iterdir()) == []

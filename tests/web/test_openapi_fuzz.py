"""#11.10: schemathesis against a real ``villagecast serve``: no 5xx, every response as documented.

Three runs over the whole OpenAPI document — anonymous, as a village head, as the county admin
(last: its fuzzing may disable other accounts) — with the checks ``not_a_server_error``,
``status_code_conformance``, ``content_type_conformance`` and ``response_schema_conformance``;
together at least 2,000 generated requests. The events WebSocket is left out (an upgrade, not a
request/response operation).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import pytest

from devices import store
from web.db import make_engine, make_sessionmaker, migrate

from .foundation_helpers import VILLAGE, clean_env, free_port, stop, venv_bin, wait_healthy

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)
MIN_REQUESTS = 2000


async def _seed(data_dir: Path) -> dict[str, str]:
    """Goseong, an admin and a village head with API tokens, a speaker box: the fuzzers' logins."""
    engine = make_engine(f"sqlite+aiosqlite:///{data_dir / 'villagecast.db'}")
    await migrate(engine)
    tokens: dict[str, str] = {}
    async with make_sessionmaker(engine)() as session:
        await store.import_regions_file(session, store.DEMO_REGIONS)
        for username, role, region in (("admin", "admin", "48820"), ("head", "village", VILLAGE)):
            account = await store.create_account(session, username, "fuzz password", role, region)
            tokens[username] = (await store.create_api_token(session, account, "fuzz")).token
        await store.create_device(session, VILLAGE, "box")
        await session.commit()
    await engine.dispose()
    return tokens


def _fuzz(port: int, token: str | None, examples: int, report: Path) -> tuple[int, str]:
    args = [
        venv_bin("schemathesis"), "run", f"http://127.0.0.1:{port}/api/v1/openapi.json",
        # one worker: Python 3.11.7's ast.parse is not thread-safe (CPython gh-106905), and
        # hypothesis parses lambdas with it while describing strategies
        "--checks", CHECKS, "--max-examples", str(examples), "--workers", "1",
        "--exclude-path", "/api/v1/events", "--request-timeout", "20", "--no-shrink",
        "--seed", "11", "--output-truncate", "false", "--warnings", "off",
        "--report", "junit", "--report-junit-path", str(report),
    ]  # fmt: skip
    if token:
        args += ["--header", f"Authorization: Bearer {token}"]
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=400,
        env=clean_env(),
        check=False,
        cwd=report.parent,  # schemathesis keeps a cache directory in its working directory
    )
    out = proc.stdout + proc.stderr
    match = re.search(r"Test cases:\s*\n?\s*(\d+) generated", out)
    return (int(match[1]) if match else 0), out if proc.returncode else ""


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_undocumented_response(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    tokens = asyncio.run(_seed(tmp_path / "data"))
    port = free_port()
    proc = subprocess.Popen(
        [
            venv_bin("villagecast"),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=clean_env(VILLAGECAST_LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "server.log").open("wb"),
    )
    started = time.monotonic()
    try:
        wait_healthy(port, proc)
        runs = [
            ("anonymous", None, 4),
            ("village head", tokens["head"], 6),
            ("admin", tokens["admin"], 8),
        ]
        total, failures = 0, []
        for who, token, examples in runs:
            count, failed = _fuzz(port, token, examples, tmp_path / f"{who}.xml")
            print(f"schemathesis as {who}: {count} requests")
            total += count
            if failed:
                failures.append(f"--- as {who} ---\n{failed[-6000:]}")
        assert not failures, "\n".join(failures)
        assert total >= MIN_REQUESTS, total
        print(f"schemathesis: {total} requests in {time.monotonic() - started:.0f} s")
    finally:
        stop(proc)
    assert "unhandled error" not in (tmp_path / "server.log").read_text()  # no 500 was logged

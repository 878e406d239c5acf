"""The ``villagecast`` command as a real subprocess, then logging in over HTTP to a real server."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devices import store

from .foundation_helpers import clean_env, free_port, stop, venv_bin, wait_healthy


def run(*args: str, data_dir: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_bin("villagecast"), *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        check=False,
    )


def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


@pytest.mark.slow
def test_user_add_then_log_in_over_http(tmp_path: Path) -> None:
    data = tmp_path / "data"
    imported = run("regions", "import", str(store.DEMO_REGIONS), data_dir=data)
    assert imported.returncode == 0, imported.stderr
    assert "villages" in imported.stdout
    added = run(
        "user", "add", "--username", "boss", "--role", "admin", "--region", "48820",
        "--password-stdin", data_dir=data, stdin="a long password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "username=boss" in added.stdout
    device = run(
        "device", "add", "--village", "goseong-eup-seongnae-ri", "--name", "회관", data_dir=data
    )
    assert device.returncode == 0, device.stderr
    lines = dict(line.split("=", 1) for line in device.stdout.split())
    assert lines["token"].startswith("vcs_")

    port = free_port()
    proc = subprocess.Popen(
        [venv_bin("villagecast"), "serve", "--port", str(port), "--data-dir", str(data)],
        env=clean_env(VILLAGECAST_LOG_FORMAT="text"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port, proc)
        base = f"http://127.0.0.1:{port}/api/v1"
        status, body, headers = post_json(
            f"{base}/session", {"username": "boss", "password": "a long password"}
        )
        assert status == 200
        assert body["account"]["role"] == "admin"
        assert "HttpOnly" in headers["Set-Cookie"]
        status, body, headers = post_json(
            f"{base}/session", {"username": "boss", "password": "not it"}
        )
        assert status == 401
        assert headers["Content-Type"].startswith("application/problem+json")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/no-such-thing", timeout=10)
        assert info.value.code == 404
        assert info.value.headers["Content-Type"].startswith("application/problem+json")
    finally:
        stop(proc)


def test_bad_user_add_is_refused_with_a_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    short = run(
        "user", "add", "--username", "boss", "--role", "admin", "--region", "48820",
        "--password-stdin", data_dir=data, stdin="short\n",
    )  # fmt: skip
    assert short.returncode == 2
    assert "at least 8" in short.stderr
    nowhere = run(
        "user", "add", "--username", "boss", "--role", "admin", "--region", "48820",
        "--password-stdin", data_dir=data, stdin="a long password\n",
    )  # fmt: skip
    assert nowhere.returncode == 1
    assert "unknown region" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


def test_regions_import_refuses_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"county": {"code": "x"}, "districts": []}', encoding="utf-8")
    result = run("regions", "import", str(bad), data_dir=tmp_path / "data")
    assert result.returncode == 1
    assert "name_ko" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["serve"], ["migrate"], ["user", "add"], ["device", "add"], ["regions", "import"]],
)
def test_every_command_has_help(args: list[str]) -> None:
    result = subprocess.run(
        [venv_bin("villagecast"), *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 0
    assert "usage: villagecast" in result.stdout

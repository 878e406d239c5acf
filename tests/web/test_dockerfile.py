"""The Dockerfile, read as data: its command and health check run here with the venv's programs.

No docker engine runs on these machines, so the test runs the image's CMD and HEALTHCHECK command
lines themselves, with the image's ENV (bound to 127.0.0.1 and a temporary data directory here).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from .foundation_helpers import clean_env, free_port, stop, venv_bin, wait_healthy

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuations joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def one(keyword: str) -> str:
    found = [rest for kw, rest in instructions() if kw == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for kw, rest in instructions():
        if kw == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def healthcheck_command() -> list[str]:
    rest = one("HEALTHCHECK")
    cmd = rest.split(" CMD ", 1)[1] if " CMD " in rest else rest.split("CMD ", 1)[1]
    return list(json.loads(cmd))


def test_image_is_slim_non_root_with_a_data_volume_and_media_tools() -> None:
    assert one("FROM") == "python:3.11-slim-bookworm"
    user = one("USER")
    assert user not in ("root", "0")
    assert json.loads(one("VOLUME")) == ["/data"]
    env = image_env()
    assert env["VILLAGECAST_DATA_DIR"] == "/data"
    assert env["VILLAGECAST_HOST"] == "0.0.0.0"
    runs = " ".join(rest for kw, rest in instructions() if kw == "RUN")
    assert "ffmpeg" in runs
    assert "espeak-ng" in runs
    assert "curl" not in runs  # the health check uses Python's urllib
    assert json.loads(one("CMD")) == ["villagecast", "serve"]
    assert healthcheck_command()[0] == "python"


def test_image_copies_every_package_that_pyproject_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}
    copied = {Path(rest.split()[0]).name for kw, rest in instructions() if kw == "COPY"}
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    assert {"pyproject.toml", "README.md"} <= set(
        " ".join(rest for kw, rest in instructions() if kw == "COPY").split()
    )


@pytest.mark.slow
def test_the_images_command_serves_and_its_health_check_passes(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        **image_env(),
    )
    # Here: loopback only, a temporary data directory, a free port.
    env.update(
        VILLAGECAST_HOST="127.0.0.1",
        VILLAGECAST_DATA_DIR=str(tmp_path / "data"),
        VILLAGECAST_PORT=str(port),
        VILLAGECAST_LOG_FORMAT="text",
    )
    cmd = json.loads(one("CMD"))
    proc = subprocess.Popen(
        [venv_bin(cmd[0]), *cmd[1:]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port, proc)
        check = healthcheck_command()
        result = subprocess.run([venv_bin(check[0]), *check[1:]], env=env, timeout=30, check=False)
        assert result.returncode == 0
        assert (tmp_path / "data" / "villagecast.db").exists()
    finally:
        stop(proc)
    # And the health check fails when nothing answers.
    result = subprocess.run(
        [venv_bin(check[0]), *check[1:]],
        env=env,
        timeout=30,
        check=False,
        capture_output=True,
    )
    assert result.returncode != 0


def test_pyproject_lists_every_package_so_the_image_installs_them_all() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(project["tool"]["setuptools"]["packages"])
    tops = {p.split(".")[0] for p in listed}
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in tops
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"

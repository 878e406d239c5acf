"""Settings: read from the environment, overridden by flags, each one documented in the README."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from web.cli import build_parser, settings_from
from web.settings import ENV_PREFIX, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def _config_rows() -> dict[str, list[str]]:
    """The README's configuration table: setting name → its cells."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and (m := re.fullmatch(r"`(\w+)`", cells[0])):
            rows[m.group(1)] = cells
    return rows


def _default(f: object) -> object:
    if f.default is not MISSING:  # type: ignore[attr-defined]
        return f.default  # type: ignore[attr-defined]
    return f.default_factory()  # type: ignore[attr-defined]


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    return str(value)


@pytest.mark.parametrize("f", fields(Settings), ids=lambda f: f.name)
def test_every_setting_is_in_the_readme_table(f: object) -> None:
    rows = _config_rows()
    name = f.name  # type: ignore[attr-defined]
    assert name in rows, f"README's configuration table has no row for `{name}`"
    cells = rows[name]
    assert cells[1] == f"`{ENV_PREFIX}{name.upper()}`"
    assert cells[2] == f"`{_shown(_default(f))}`", f"README shows a wrong default for {name}"
    assert len(cells[3]) > 10, f"README does not say what {name} means"


def test_readme_documents_no_setting_that_does_not_exist() -> None:
    assert set(_config_rows()) == {f.name for f in fields(Settings)}


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8")[:400]
    assert head.index("make run") < head.index("make test")


def test_environment_is_parsed_by_type_and_flags_win() -> None:
    env = {
        "VILLAGECAST_PORT": "9000",
        "VILLAGECAST_SECURE_COOKIES": "yes",
        "VILLAGECAST_BURST_S": "0.25",
        "VILLAGECAST_DATA_DIR": "/tmp/vc",
        "VILLAGECAST_HOST": "0.0.0.0",
    }
    s = Settings.from_env(env, host="127.0.0.2", port=None)
    assert s.port == 9000
    assert s.secure_cookies is True
    assert s.burst_s == 0.25
    assert s.data_dir == Path("/tmp/vc")
    assert s.host == "127.0.0.2"


@pytest.mark.parametrize(
    ("name", "raw"),
    [("PORT", "eighty"), ("SECURE_COOKIES", "maybe"), ("BURST_S", "fast")],
)
def test_bad_environment_values_are_refused_by_name(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=f"VILLAGECAST_{name}"):
        Settings.from_env({f"VILLAGECAST_{name}": raw})


def test_serve_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VILLAGECAST_PORT", "9000")
    monkeypatch.setenv("VILLAGECAST_LOGIN_ATTEMPTS_PER_MIN", "3")
    args = build_parser().parse_args(["serve", "--port", "9100", "--data-dir", "/tmp/x"])
    s = settings_from(args)
    assert s.port == 9100
    assert s.data_dir == Path("/tmp/x")
    assert s.login_attempts_per_min == 3


def test_sqlite_is_the_default_database(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'villagecast.db'}"
    assert Settings(database_url="postgresql+asyncpg://x/y").effective_database_url.startswith(
        "postgresql"
    )

"""Settings: one frozen dataclass, read from ``VILLAGECAST_*`` and overridden by CLI flags.

Every field is documented in the README's configuration table (a test checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["Settings", "SettingsError"]

ENV_PREFIX = "VILLAGECAST_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable about a villagecast server."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("data"))
    database_url: str = ""  # empty: SQLite file in data_dir
    demo: bool = False
    public_url: str = ""  # empty: http://host:port
    timezone: str = "Asia/Seoul"
    log_level: str = "INFO"
    log_format: str = "json"  # json | text
    max_upload_mb: int = 200
    max_duration_s: int = 1800
    max_json_kb: int = 256
    ingest_workers: int = 2
    ingest_queue: int = 20  # announcements waiting or processing before uploads get a 503
    min_free_disk_mb: int = 1024  # uploads get a 507 when the archive's disk would keep less
    retention_days: int = 0  # 0 keeps the archive forever
    quiet_hours: str = "21:00-06:00"
    validity_min: int = 10
    emergency_validity_min: int = 60
    listener_backlog_s: float = 4.0
    burst_s: float = 0.5
    hls_segment_s: float = 2.0
    ice_servers: str = ""  # comma-separated stun:/turn: URLs
    public_address: str = ""  # address WebRTC offers when not bound to loopback
    webrtc_listeners_per_channel: int = 50
    login_attempts_per_min: int = 10
    login_attempts_per_address_per_min: int = 30
    login_hash_concurrency: int = 2
    metrics_allow: str = "127.0.0.1/8,::1/128"  # addresses that may scrape /metrics
    metrics_token: str = ""  # a Bearer token that may scrape /metrics from anywhere
    allowed_origins: str = ""  # comma-separated origins, besides our own, that may open sockets
    trusted_proxies: str = ""  # comma-separated CIDRs whose X-Forwarded-For is believed
    registrations_per_hour: int = 20
    session_hours: int = 12
    max_streams: int = 0  # 0: the descriptor limit minus fd_reserve
    fd_reserve: int = 256
    streams_per_token: int = 8
    streams_per_address: int = 100
    header_timeout_s: float = 15.0
    secure_cookies: bool = False
    alerts_auto: str = "extreme"  # extreme | all | none: which CAP alerts air without a person
    cap_feeds: str = ""  # comma-separated URLs of CAP documents or Atom/RSS feeds of them
    cap_poll_s: float = 60.0  # how often the CAP feeds are polled (10 s – 1 h)

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'villagecast.db').resolve()}"

    @property
    def base_url(self) -> str:
        """Public base URL of this server (feeds, QR codes, playlists)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def max_upload_bytes(self) -> int:
        """Upload size limit in bytes."""
        return self.max_upload_mb * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Settings from ``VILLAGECAST_<NAME>`` variables, then ``overrides`` (non-None) on top."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key in env:
                values[f.name] = _parse(f, env[key])
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
        try:
            return cls(**values)
        except TypeError as exc:
            raise SettingsError(str(exc)) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
        return raw
    except ValueError:
        raise SettingsError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {kind}") from None

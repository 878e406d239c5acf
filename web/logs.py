"""Structured logging: one JSON object a line, with the request id when there is one."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            data["request_id"] = rid
        for key in (
            "event",
            "village",
            "broadcast_id",
            "device_id",
            "announcement_id",
            "method",
            "path",
            "status",
            "duration_ms",
        ):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the request id."""

    def format(self, record: logging.LogRecord) -> str:
        rid = request_id_var.get()
        base = super().format(record)
        return f"{base} [{rid}]" if rid else base


def configure_logging(level: str, fmt: str) -> None:
    """Send logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class LogThrottle:
    """At most ``burst`` records per ``window_s`` per key; then one summary of what was held back.

    For errors that can repeat thousands of times a second (accept() failing at the descriptor
    limit, every request during a database outage): the log says it once, then how often.
    """

    def __init__(self, burst: int = 5, window_s: float = 10.0) -> None:
        self.burst = burst
        self.window_s = window_s
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, key: str, now: float | None = None) -> tuple[bool, int]:
        """Whether to log this occurrence, and how many were held back in the window that ended."""
        now = time.monotonic() if now is None else now
        start, count = self._windows.get(key, (now, 0))
        suppressed = 0
        if now - start >= self.window_s:
            suppressed = max(count - self.burst, 0)
            start, count = now, 0
        count += 1
        self._windows[key] = (start, count)
        return count <= self.burst, suppressed

    def log(self, logger: logging.Logger, level: int, key: str, msg: str, *args: object) -> None:
        """Log ``msg`` unless ``key`` is over its burst in this window."""
        allowed, suppressed = self.allow(key)
        if suppressed:
            logger.log(
                level, "%s: %d more like it in the last %g s", key, suppressed, self.window_s
            )
        if allowed:
            logger.log(level, msg, *args)

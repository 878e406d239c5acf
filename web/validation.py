"""Request parsing helpers: JSON bodies with known fields, and typed field readers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from devices.errors import InvalidError, InvalidField, TooLargeError, UnsupportedMediaError

from .keys import SETTINGS


class MalformedJson(InvalidError):
    """The body is not valid JSON."""

    title_ko = "JSON 형식이 올바르지 않습니다"


class BodyTooLarge(TooLargeError):
    """The request body is too large."""

    title_ko = "요청 본문이 너무 큽니다"


class NotJson(UnsupportedMediaError):
    """The body must be JSON (Content-Type: application/json)."""

    title_ko = "JSON 본문(Content-Type: application/json)이 필요합니다"


async def json_body(
    request: web.Request, allowed: Iterable[str], required: Iterable[str] = ()
) -> dict[str, Any]:
    """The request's JSON object; refuses other types, oversized, unknown or missing keys."""
    if request.content_type != "application/json":
        raise NotJson(f"expected application/json, got {request.content_type or 'nothing'}")
    limit = request.app[SETTINGS].max_json_kb * 1024
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"JSON bodies are limited to {limit} bytes")
    raw = await _read_at_most(request, limit)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedJson(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedJson("the body must be a JSON object")
    allowed_set = set(allowed)
    unknown = sorted(set(data) - allowed_set)
    if unknown:
        raise InvalidField(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    missing = sorted(name for name in required if data.get(name) in (None, ""))
    if missing:
        raise InvalidField(f"missing field(s): {', '.join(missing)}", fields=missing)
    return data


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)  # may return less: loop to EOF
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"JSON bodies are limited to {limit} bytes")
        chunks.append(chunk)


def text_field(
    data: dict[str, Any], name: str, *, max_len: int, required: bool = True, min_len: int = 1
) -> str | None:
    """A trimmed string field within length bounds, without control characters."""
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidField(f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise InvalidField(f"{name} must be a string", field=name)
    value = value.strip()
    if len(value) < min_len:
        raise InvalidField(f"{name} must not be empty", field=name)
    if len(value) > max_len:
        raise InvalidField(f"{name} must be at most {max_len} characters", field=name)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidField(f"{name} must not contain control characters", field=name)
    return value


def int_field(
    data: dict[str, Any], name: str, *, lo: int, hi: int, default: int | None = None
) -> int:
    """An integer field within ``[lo, hi]``."""
    value = data.get(name, default)
    if value is None:
        raise InvalidField(f"{name} is required", field=name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(f"{name} must be an integer", field=name)
    if not lo <= value <= hi:
        raise InvalidField(f"{name} must be between {lo} and {hi}", field=name)
    return value


def bool_field(data: dict[str, Any], name: str, *, default: bool) -> bool:
    """A boolean field."""
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise InvalidField(f"{name} must be true or false", field=name)
    return value


def path_int(request: web.Request, name: str = "id") -> int:
    """An integer path parameter (404 when it is not one)."""
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


MAX_PAGE = 500


def page_params(request: web.Request, default_limit: int = 50) -> tuple[int, int]:
    """``?limit=&offset=`` as integers (limit 1–500, offset ≥ 0)."""
    out = []
    for name, default, lo, hi in (
        ("limit", default_limit, 1, MAX_PAGE),
        ("offset", 0, 0, 10**9),
    ):
        raw = request.query.get(name)
        if raw is None or raw == "":
            out.append(default)
            continue
        if not raw.isdigit() or not lo <= int(raw) <= hi:
            raise InvalidField(f"{name} must be an integer between {lo} and {hi}", field=name)
        out.append(int(raw))
    return out[0], out[1]


def query_choice(request: web.Request, name: str, choices: Iterable[str]) -> str | None:
    """An optional query parameter restricted to some values."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    allowed = tuple(choices)
    if raw not in allowed:
        raise InvalidField(f"{name} must be one of: {', '.join(allowed)}", field=name)
    return raw


def iso_time(value: datetime | None, tz: str = "Asia/Seoul") -> str | None:
    """An aware time as ISO 8601 with the offset of the display zone."""
    if value is None:
        return None
    return value.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """The JSON shape of a paged list."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}

"""Request parsing helpers: JSON bodies with known fields, and typed field readers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import MultipartReader, web

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
    data = parse_json(await _read_at_most(request, limit))
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


# What a JSON body may hold: the parsers below refuse the rest before any handler sees it.
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 18  # fits a 64-bit column; longer integers are never ids, counts or limits


def _json_int(raw: str) -> int:
    if len(raw.lstrip("-")) > MAX_INT_DIGITS:
        raise MalformedJson(f"integers are limited to {MAX_INT_DIGITS} digits")
    return int(raw)


def _json_float(raw: str) -> float:
    if len(raw) > 40:
        raise MalformedJson("numbers are limited to 40 characters")
    return float(raw)


def _json_constant(raw: str) -> Any:
    raise MalformedJson(f"{raw} is not JSON")


def _check_tree(value: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_JSON_DEPTH` and strings with lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise MalformedJson("strings must not contain lone surrogates (\\ud800–\\udfff)")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise MalformedJson(f"JSON is limited to {MAX_JSON_DEPTH} levels of nesting")
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)


_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(raw: bytes) -> Any:
    """The one JSON parser of request bodies: UTF-8, bounded depth and integers, no NaN.

    Everything it refuses is a :class:`MalformedJson` (422), never a server error.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"the body is not UTF-8: {exc.reason}") from None
    try:
        data = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise MalformedJson(f"JSON is limited to {MAX_JSON_DEPTH} levels of nesting") from None
    _check_tree(data)
    return data


async def multipart_reader(request: web.Request) -> MultipartReader:
    """The request's multipart reader; a missing or over-long boundary is a 422, not a crash."""
    try:
        return await request.multipart()
    except (ValueError, AssertionError, KeyError) as exc:
        raise InvalidField(f"malformed multipart body: {exc}") from None


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


_ASCII_DIGITS = re.compile(f"[0-9]{{1,{MAX_INT_DIGITS}}}")  # not \d: it matches ٣ and ²


def parse_id(raw: str) -> int | None:
    """The one parser of ids and paging numbers: ASCII digits only, at most 18 of them."""
    return int(raw) if _ASCII_DIGITS.fullmatch(raw) else None


def path_int(request: web.Request, name: str = "id") -> int:
    """An integer path parameter (404 when it is not one)."""
    value = parse_id(request.match_info[name])
    if value is None:
        raise web.HTTPNotFound()
    return value


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
        value = parse_id(raw)
        if value is None or not lo <= value <= hi:
            raise InvalidField(f"{name} must be an integer between {lo} and {hi}", field=name)
        out.append(value)
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

"""RFC 9457 problem details: the one place where errors become HTTP responses."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devices import errors as E

from .db import is_outage
from .logs import LogThrottle, request_id_var

log = logging.getLogger(__name__)
access_log = logging.getLogger("villagecast.access")
_THROTTLE = LogThrottle()
RETRY_AFTER_S = 5  # what a client is told to wait while the database is unreachable
_RID_OK = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _request_id(header: str) -> str:
    """The client's X-Request-Id when it is safe to log and echo; otherwise a fresh one."""
    return header if _RID_OK.match(header) else uuid.uuid4().hex[:16]


PROBLEM_TYPE = "application/problem+json"

# Category → HTTP status. Leaves of every package inherit one of these categories.
STATUS_BY_CATEGORY: list[tuple[type[E.VillagecastError], int]] = [
    (E.UnauthorizedError, 401),
    (E.ForbiddenError, 403),
    (E.NotFoundError, 404),
    (E.ConflictError, 409),
    (E.TooLargeError, 413),
    (E.UnsupportedMediaError, 415),
    (E.RateLimitedError, 429),
    (E.UnavailableError, 503),
    (E.InsufficientStorageError, 507),
    (E.InvalidError, 422),
]

HTTP_TITLES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "잘못된 요청입니다"),
    401: ("Authentication required", "로그인이 필요합니다"),
    403: ("Forbidden", "권한이 없습니다"),
    404: ("Not found", "찾을 수 없습니다"),
    405: ("Method not allowed", "허용되지 않는 요청 방식입니다"),
    409: ("Conflict", "현재 상태와 맞지 않습니다"),
    413: ("Request too large", "요청이 너무 큽니다"),
    415: ("Unsupported media type", "지원하지 않는 형식입니다"),
    422: ("Invalid request", "요청이 올바르지 않습니다"),
    429: ("Too many requests", "요청이 너무 많습니다"),
    500: ("Internal server error", "서버 오류가 발생했습니다"),
    503: ("Service unavailable", "일시적으로 사용할 수 없습니다"),
    507: ("Insufficient storage", "저장 공간이 부족합니다"),
}


def _prefers_korean(request: web.Request | None) -> bool:
    if request is None:
        return True
    header = request.headers.get("Accept-Language", "")
    if not header:
        return True  # our users are Korean
    first = header.split(",")[0].strip().lower()
    return not first.startswith("en")


def problem(
    status: int,
    *,
    title_en: str | None = None,
    title_ko: str | None = None,
    detail: str = "",
    slug: str = "",
    request: web.Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A problem+json response, titled in Korean or English by ``Accept-Language``."""
    default_en, default_ko = HTTP_TITLES.get(status, ("Error", "오류"))
    en, ko = title_en or default_en, title_ko or default_ko
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": ko if _prefers_korean(request) else en,
        "status": status,
        "detail": detail or en,
        "title_en": en,
        "title_ko": ko,
    }
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    body.update(extra)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def _slug(cls: type) -> str:
    out = []
    for i, ch in enumerate(cls.__name__):
        if ch.isupper() and i:
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


def status_of(exc: E.VillagecastError) -> int:
    """The HTTP status of a domain error, by its category."""
    for category, status in STATUS_BY_CATEGORY:
        if isinstance(exc, category):
            return status
    return 400


def from_error(exc: E.VillagecastError, request: web.Request | None = None) -> web.Response:
    """The problem response of a domain error."""
    status = status_of(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="villagecast"'} if status == 401 else None
    if status in (429, 503, 507) and "retry_after_s" in exc.extra:
        headers = {"Retry-After": str(int(exc.extra["retry_after_s"]))}
    return problem(
        status,
        title_en=type(exc).title_en(),
        title_ko=type(exc).title_ko,
        detail=exc.detail,
        slug=_slug(type(exc)),
        request=request,
        headers=headers,
        **{
            k: v
            for k, v in exc.extra.items()
            if isinstance(v, str | int | float | bool | list | dict)
        },
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into a problem response; never show a traceback. Logs each request."""
    rid = _request_id(request.headers.get("X-Request-Id", ""))
    token = request_id_var.set(rid)
    started = time.perf_counter()
    status = 499  # the client went away (or the task was cancelled) before an answer
    try:
        response = await _answer(request, handler)
        status = response.status
    except web.HTTPException as exc:  # a redirect or other non-error status: aiohttp sends it
        status = exc.status
        raise
    finally:
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        request_id_var.reset(token)
    if not response.prepared:
        response.headers["X-Request-Id"] = rid
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except E.VillagecastError as exc:
        return from_error(exc, request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.content_type == PROBLEM_TYPE:
            return web.Response(
                status=exc.status, body=exc.body, content_type=PROBLEM_TYPE, headers=_keep(exc)
            )
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else ""
        return problem(exc.status, detail=detail, request=request, headers=_keep(exc))
    except ConnectionResetError:  # the client went away mid-response: nothing to answer
        raise
    except Exception as exc:
        if is_outage(exc):
            _THROTTLE.log(
                log, logging.WARNING, "database unavailable", "database unavailable: %r", exc
            )
            return database_unavailable(
                request, f"the database cannot be reached ({type(exc).__name__})"
            )
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, detail="Unexpected error; it has been logged.", request=request)


def database_unavailable(request: web.Request | None, detail: str) -> web.Response:
    """The 503 problem of a database outage, with ``Retry-After``."""
    return problem(
        503,
        title_en="The database is unavailable; try again shortly",
        title_ko="데이터베이스에 연결할 수 없습니다. 잠시 후 다시 시도하세요",
        detail=detail,
        slug="database-unavailable",
        request=request,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _keep(exc: web.HTTPException) -> dict[str, str]:
    keep = ("Allow", "WWW-Authenticate", "Retry-After", "Location")
    return {k: v for k, v in exc.headers.items() if k in keep}

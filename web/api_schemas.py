"""What each operation accepts and answers, for the OpenAPI document (one table for every route).

Handlers may still attach their own details with :func:`web.openapi.document`; this table fills in
what they leave out, so that the routes of every module are described in one place: request bodies
with their constraints, the success status and its schema. Every operation also lists the problem
statuses that the problem middleware can answer for it (see :func:`problem_statuses`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["OPERATIONS", "PROBLEM_SCHEMA", "problem_statuses"]

S = dict[str, Any]


def _str(max_len: int, min_len: int = 1, **more: Any) -> S:
    return {"type": "string", "minLength": min_len, "maxLength": max_len, **more}


def _obj(props: S, required: tuple[str, ...] = (), *, closed: bool = True) -> S:
    out: S = {"type": "object", "properties": props, "required": sorted(required)}
    if closed:
        out["additionalProperties"] = False
    return out


def _json(schema: S) -> S:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(status: int, schema: S | None = None, ctype: str = "application/json") -> S:
    body: S = {"description": "success"}
    if schema is not None:
        body["content"] = {ctype: {"schema": schema}}
    return {str(status): body}


ID = {"type": "integer", "minimum": 1}
NULL_STR = {"type": ["string", "null"]}
CODE = _str(64, pattern="^[A-Za-z0-9_-]+$")
CODES = {"type": "array", "items": CODE, "maxItems": 1000}
TARGETS = {
    "type": "object",
    "properties": {
        "villages": CODES,
        "districts": CODES,
        "county": {"type": "boolean"},
        "groups": {"type": "array", "items": ID, "maxItems": 1000},
    },
    "additionalProperties": False,
    "description": "at least one place",
}
PRIORITY = {"enum": ["normal", "urgent", "emergency"]}
SDP = {"sdp": _str(100_000), "type": {"enum": ["offer"]}}

PROBLEM_SCHEMA: S = _obj(
    {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "title_en": {"type": "string"},
        "title_ko": {"type": "string"},
        "request_id": {"type": "string"},
    },
    ("type", "title", "status", "detail"),
    closed=False,
)

OBJECT: S = {"type": "object"}
ITEMS: S = _obj({"items": {"type": "array"}}, ("items",), closed=False)
PAGE: S = _obj(
    {
        "items": {"type": "array"},
        "total": {"type": "integer", "minimum": 0},
        "limit": {"type": "integer", "minimum": 1},
        "offset": {"type": "integer", "minimum": 0},
    },
    ("items", "total", "limit", "offset"),
    closed=False,
)
ACCOUNT: S = _obj(
    {
        "id": ID,
        "username": {"type": "string"},
        "role": {"enum": ["admin", "district", "village"]},
        "region": OBJECT,
        "disabled": {"type": "boolean"},
    },
    ("id", "username", "role", "region", "disabled"),
    closed=False,
)
ANNOUNCEMENT: S = _obj(
    {
        "id": ID,
        "title": {"type": "string"},
        "status": {"enum": ["processing", "ready", "failed"]},
        "error": NULL_STR,
        "duration_s": {"type": ["number", "null"]},
        "loudness_lufs": {"type": ["number", "null"]},
        "sha256": NULL_STR,
        "renditions": OBJECT,
    },
    ("id", "title", "status"),
    closed=False,
)
BROADCAST: S = _obj(
    {
        "id": {"type": ["integer", "null"]},
        "status": {"type": "string"},
        "plan": {"type": "array"},
        "start_at": NULL_STR,
    },
    ("id", "status"),
    closed=False,
)
DEVICE: S = _obj(
    {"id": ID, "village": {"type": "string"}, "name": {"type": "string"}},
    ("id", "name"),
    closed=False,
)
LISTENER: S = _obj(
    {"id": ID, "status": {"enum": ["active", "pending", "revoked"]}},
    ("id", "status"),
    closed=False,
)
ANSWER: S = _obj(
    {"sdp": {"type": "string"}, "type": {"const": "answer"}}, ("sdp", "type"), closed=False
)
TEXT = {"type": "string"}

# (method, path) → OpenAPI operation fields. Paths as in the document (parameters without regex).
OPERATIONS: dict[tuple[str, str], S] = {
    ("post", "/api/v1/session"): {
        "requestBody": _json(
            _obj({"username": _str(64), "password": _str(1024)}, ("username", "password"))
        ),
        "responses": _ok(
            200, _obj({"account": ACCOUNT, "csrf_token": TEXT}, ("account",), closed=False)
        ),
    },
    ("get", "/api/v1/session"): {
        "responses": _ok(200, _obj({"account": ACCOUNT}, ("account",), closed=False))
    },
    ("delete", "/api/v1/session"): {"responses": _ok(204)},
    ("post", "/api/v1/tokens"): {
        "requestBody": _json(_obj({"name": _str(100)}, ("name",))),
        "responses": _ok(201, _obj({"id": ID, "token": TEXT}, ("id", "token"), closed=False)),
    },
    ("get", "/api/v1/tokens"): {"responses": _ok(200, ITEMS)},
    ("delete", "/api/v1/tokens/{id}"): {"responses": _ok(204)},
    ("post", "/api/v1/users"): {
        "requestBody": _json(
            _obj(
                {
                    "username": _str(64, 3, pattern="^[a-z0-9][a-z0-9._-]{2,63}$"),
                    "password": _str(1024, 8),
                    "role": {"enum": ["admin", "district", "village"]},
                    "region": CODE,
                    "display_name": _str(100, 0),
                },
                ("username", "password", "role", "region"),
            )
        ),
        "responses": _ok(201, ACCOUNT),
    },
    ("get", "/api/v1/users"): {"responses": _ok(200, ITEMS)},
    ("delete", "/api/v1/users/{id}"): {"responses": _ok(204)},
    ("get", "/api/v1/audit"): {"responses": _ok(200, PAGE)},
    ("get", "/api/v1/regions"): {"responses": _ok(200, OBJECT)},
    ("get", "/api/v1/regions/{code}"): {"responses": _ok(200, OBJECT)},
    ("patch", "/api/v1/regions/{code}"): {
        "requestBody": _json(
            _obj(
                {
                    "requires_listener_approval": {"type": "boolean"},
                    "quiet_hours": {
                        "type": ["string", "null"],
                        "pattern": "^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$",
                    },
                    "tags": {"type": "array", "items": _str(32), "maxItems": 20},
                }
            )
        ),
        "responses": _ok(200, OBJECT),
    },
    ("post", "/api/v1/devices"): {
        "requestBody": _json(
            _obj(
                {"kind": {"enum": ["speaker"]}, "village": CODE, "name": _str(100)},
                ("village", "name"),
            )
        ),
        "responses": _ok(201, DEVICE),
    },
    ("get", "/api/v1/devices"): {"responses": _ok(200, ITEMS)},
    ("get", "/api/v1/devices/{id}"): {"responses": _ok(200, DEVICE)},
    ("delete", "/api/v1/devices/{id}"): {"responses": _ok(204)},
    ("post", "/api/v1/groups"): {
        "requestBody": _json(
            _obj(
                {
                    "name": _str(100),
                    "region": CODE,
                    "devices": {"type": "array", "items": ID, "maxItems": 1000},
                },
                ("name", "region"),
            )
        ),
        "responses": _ok(201, OBJECT),
    },
    ("get", "/api/v1/groups"): {"responses": _ok(200, ITEMS)},
    ("get", "/api/v1/groups/{id}"): {"responses": _ok(200, OBJECT)},
    ("delete", "/api/v1/groups/{id}"): {"responses": _ok(204)},
    ("post", "/api/v1/groups/{id}/members"): {
        "requestBody": _json(
            _obj({"devices": {"type": "array", "items": ID, "maxItems": 1000}}, ("devices",))
        ),
        "responses": _ok(200, OBJECT),
    },
    ("delete", "/api/v1/groups/{id}/members/{device_id}"): {"responses": _ok(204)},
    ("post", "/api/v1/listeners"): {
        "requestBody": _json(
            _obj(
                {"village": CODE, "nickname": _str(40), "consent": {"type": "boolean"}},
                ("village", "nickname"),
            )
        ),
        "responses": _ok(
            201,
            _obj(
                {"id": ID, "token": TEXT, "status": TEXT}, ("id", "token", "status"), closed=False
            ),
        ),
    },
    ("get", "/api/v1/listeners"): {"responses": _ok(200, PAGE)},
    ("get", "/api/v1/listeners/me"): {"responses": _ok(200, LISTENER)},
    ("delete", "/api/v1/listeners/me"): {"responses": _ok(204)},
    ("delete", "/api/v1/listeners/{id}"): {"responses": _ok(204)},
    ("post", "/api/v1/listeners/{id}/approve"): {"responses": _ok(200, LISTENER)},
    ("post", "/api/v1/announcements"): {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": _obj(
                        {"title": _str(200), "file": {"type": "string", "format": "binary"}},
                        ("title", "file"),
                        closed=False,
                    )
                },
                "application/json": {
                    "schema": _obj({"title": _str(200), "text": _str(2000)}, ("title", "text"))
                },
            },
        },
        "responses": _ok(
            202, _obj({"id": ID, "status": {"const": "processing"}}, ("id", "status"))
        ),
    },
    ("get", "/api/v1/announcements"): {"responses": _ok(200, PAGE)},
    ("get", "/api/v1/announcements/{id}"): {"responses": _ok(200, ANNOUNCEMENT)},
    ("post", "/api/v1/broadcasts"): {
        "requestBody": _json(
            _obj(
                {
                    "announcement_id": ID,
                    "targets": TARGETS,
                    "start_at": {"type": "string", "format": "date-time"},
                    "priority": PRIORITY,
                    "repeat": {"type": "integer", "minimum": 1, "maximum": 10},
                    "chime": {"type": "boolean"},
                    "recurrence": {"type": ["object", "null"]},
                    "defer_quiet": {"type": "boolean"},
                    "dry_run": {"type": "boolean"},
                },
                ("announcement_id", "targets"),
            )
        ),
        "responses": {**_ok(201, BROADCAST), **_ok(200, BROADCAST)},
    },
    ("get", "/api/v1/broadcasts"): {"responses": _ok(200, PAGE)},
    ("get", "/api/v1/broadcasts/{id}"): {"responses": _ok(200, BROADCAST)},
    ("get", "/api/v1/broadcasts/{id}/report.csv"): {"responses": _ok(200, TEXT, "text/csv")},
    ("post", "/api/v1/broadcasts/{id}/cancel"): {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _obj({"reason": _str(500, 0)})}},
        },
        "responses": _ok(200, BROADCAST),
    },
    ("get", "/api/v1/dashboard"): {"responses": _ok(200, OBJECT)},
    ("get", "/api/v1/replays"): {"responses": _ok(200, ITEMS)},
    ("post", "/api/v1/qr"): {"responses": _ok(200, TEXT, "image/svg+xml")},
    ("post", "/api/v1/live/publish"): {
        "requestBody": _json(
            _obj(
                {
                    **SDP,
                    "targets": TARGETS,
                    "priority": PRIORITY,
                    "chime": {"type": "boolean"},
                    "title": _str(200),
                },
                ("sdp", "type", "targets"),
            )
        ),
        "responses": _ok(201, ANSWER),
    },
    ("post", "/api/v1/live/listen/{village}"): {
        "requestBody": _json(_obj(SDP, ("sdp", "type"))),
        "responses": _ok(200, ANSWER),
    },
    ("get", "/api/v1/live/sessions"): {"responses": _ok(200, ITEMS)},
    ("delete", "/api/v1/live/sessions/{id}"): {"responses": _ok(200, OBJECT)},
    ("delete", "/api/v1/live/publish/{id}"): {"responses": _ok(200, OBJECT)},
    ("post", "/api/v1/alerts"): {
        "requestBody": {
            "required": True,
            "content": {
                ctype: {"schema": {"type": "string", "maxLength": 256 * 1024}}
                for ctype in ("application/cap+xml", "application/xml", "text/xml")
            },
        },
        "responses": {**_ok(201, OBJECT), **_ok(200, OBJECT)},
    },
    ("get", "/api/v1/alerts"): {"responses": _ok(200, PAGE)},
    ("get", "/api/v1/alerts/{id}"): {"responses": _ok(200, OBJECT)},
    ("post", "/api/v1/alerts/{id}/approve"): {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": _obj({"villages": CODES, "defer_quiet": {"type": "boolean"}})
                }
            },
        },
        "responses": _ok(200, OBJECT),
    },
    ("post", "/api/v1/alerts/{id}/reject"): {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _obj({"reason": _str(500, 0)})}},
        },
        "responses": _ok(200, OBJECT),
    },
    ("get", "/api/v1/asrun"): {"responses": _ok(200, TEXT, "application/x-ndjson")},
    ("get", "/api/v1/openapi.json"): {"responses": _ok(200, OBJECT)},
    ("get", "/healthz"): {"responses": _ok(200, _obj({"status": {"const": "ok"}}, ("status",)))},
    ("get", "/readyz"): {"responses": _ok(200, _obj({"status": {"const": "ready"}}, ("status",)))},
    ("get", "/metrics"): {"responses": _ok(200, TEXT, "text/plain")},
}

# Statuses the problem middleware answers on any operation, and the ones that depend on traits.
ALWAYS = (400, 503)


def problem_statuses(method: str, path: str, has_body: bool, public: bool) -> list[int]:
    """The problem statuses an operation can really answer."""
    out = set(ALWAYS)
    if not public:
        out |= {401, 403}
    if "{" in path:
        out.add(404)
    if has_body:
        out |= {413, 415, 422}
    if method in ("post", "patch", "put", "delete"):
        out |= {403, 404, 409, 422}
    if method == "get":
        out |= {404, 422}  # a missing object or a bad query parameter
    if path in ("/api/v1/session", "/api/v1/listeners") and method == "post":
        out.add(429)
    return sorted(out)

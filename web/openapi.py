"""The OpenAPI description, generated from the router so that every route is described.

A handler's summary is the first line of its docstring; the rest of the docstring is its
description. Handlers may add OpenAPI details with :func:`document` (request body, responses).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from .api_schemas import OPERATIONS, PROBLEM_SCHEMA, problem_statuses

__all__ = ["describe", "document", "operation_key", "summary_of"]

STANDARD_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

F = TypeVar("F", bound=Callable[..., Any])


def document(**details: Any) -> Callable[[F], F]:
    """Attach OpenAPI operation fields (``requestBody``, ``responses``, ``tags``…) to a handler."""

    def wrap(handler: F) -> F:
        handler.__openapi__ = details  # type: ignore[attr-defined]
        return handler

    return wrap


def _handler_of(route: AbstractRoute) -> Any:
    handler = route.handler
    if inspect.isclass(handler) and issubclass(handler, web.View):
        return getattr(handler, route.method.lower(), handler)
    return handler


def summary_of(route: AbstractRoute) -> str:
    """The first line of the route handler's docstring ("" when it has none)."""
    if route.resource is not None and isinstance(route.resource, web.StaticResource):
        return f"Static files under {route.resource.canonical}"
    doc = inspect.getdoc(_handler_of(route)) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def path_of(route: AbstractRoute) -> str | None:
    """The OpenAPI path template of a route (regex constraints dropped)."""
    resource = route.resource
    if resource is None:
        return None
    if isinstance(resource, web.StaticResource):
        return resource.canonical.rstrip("/") + "/{filename}"
    info = resource.get_info()
    raw = info.get("path") or info.get("formatter") or resource.canonical
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", str(raw))


def operation_key(route: AbstractRoute) -> tuple[str, str] | None:
    """Where a route appears in the description: (path, method key), or None for implied HEADs."""
    path = path_of(route)
    if path is None:
        return None
    method = route.method.lower()
    if method == "*":
        method = "x-any"
    elif method not in STANDARD_METHODS:
        method = f"x-{method}"  # e.g. the Icecast SOURCE method
    return path, method


def _operation(route: AbstractRoute, path: str) -> dict[str, Any]:
    handler = _handler_of(route)
    doc = (inspect.getdoc(handler) or "").strip()
    module = getattr(handler, "__module__", "") or ""
    tag = module.rsplit(".", 1)[-1].removeprefix("api_").removesuffix("_api")
    op: dict[str, Any] = {
        "summary": summary_of(route),
        "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{route.method.lower()}{path}").strip("_"),
        "tags": [tag] if tag else [],
        "responses": {"default": {"description": "see the problem+json body on errors"}},
    }
    if "\n" in doc:
        op["description"] = doc.split("\n", 1)[1].strip()
    patterns = _param_patterns(route)
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^(?:{patterns.get(name, '[^{}/]+')})$"},
        }
        for name in _PARAM.findall(path)
    ]
    if params:
        op["parameters"] = params
    op.update(getattr(handler, "__openapi__", {}))
    method = route.method.lower()
    op.update(OPERATIONS.get((method, path), {}))  # the reviewed table wins over inline hints
    responses = {k: v for k, v in op["responses"].items() if k != "default"}
    if not any(k.startswith("2") for k in responses):
        responses["200"] = {"description": "success"}
    public = (method, path) in PUBLIC
    for status in problem_statuses(method, path, "requestBody" in op, public):
        responses.setdefault(str(status), {"$ref": f"#/components/responses/P{status}"})
    op["responses"] = dict(sorted(responses.items()))
    return op


# Routes anyone may call (no login, no token): no 401/403 is documented for them.
PUBLIC = frozenset(
    ("get", path) for path in ("/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/regions")
) | {("get", "/api/v1/regions/{code}")}


def _param_patterns(route: AbstractRoute) -> dict[str, str]:
    """The regex of each path parameter, from the route's compiled pattern."""
    resource = route.resource
    if resource is None:
        return {}
    pattern = resource.get_info().get("pattern")
    if pattern is None:
        return {}
    return dict(_GROUP.findall(pattern.pattern))


_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()\\]|\\.)*)\)")


def _problem_responses() -> dict[str, Any]:
    from .problems import HTTP_TITLES

    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        f"P{status}": {
            "description": f"{en} (an RFC 9457 problem)",
            "content": {"application/problem+json": {"schema": ref}},
        }
        for status, (en, _ko) in sorted(HTTP_TITLES.items())
    }


def describe(
    app: web.Application, *, title: str = "villagecast", version: str = "1"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app``."""
    paths: dict[str, dict[str, Any]] = {}
    gets = {path_of(r) for r in app.router.routes() if r.method == "GET"}
    for route in app.router.routes():
        key = operation_key(route)
        if key is None:
            continue
        path, method = key
        if method == "head" and path in gets:
            continue  # aiohttp adds a HEAD to every GET
        paths.setdefault(path, {})[method] = _operation(route, path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Smart village broadcast server (스마트 마을방송). Errors are RFC 9457 "
            "problem details (application/problem+json).",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA},
            "responses": _problem_responses(),
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": "vc_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


def json_body(
    required: dict[str, Any], optional: dict[str, Any] | None = None, status: int = 200
) -> dict[str, Any]:
    """OpenAPI fields of a handler taking a JSON object of these properties (JSON Schema)."""

    def schema(t: Any) -> dict[str, Any]:
        return t if isinstance(t, dict) else {"type": t}

    props = {k: schema(v) for k, v in {**required, **(optional or {})}.items()}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": props,
                        "required": sorted(required),
                        "additionalProperties": False,
                    }
                }
            },
        },
        "responses": {
            str(status): {"description": "success"},
            "default": {"description": "an RFC 9457 problem (application/problem+json)"},
        },
    }

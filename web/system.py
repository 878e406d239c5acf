"""Liveness, Prometheus metrics and the OpenAPI description."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import events_api, openapi
from .db import ping
from .keys import ENGINE, EVENTS
from .problems import database_unavailable

# Latency histogram buckets in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counters and latency histograms, plus gauges other modules register."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.gauges: dict[str, tuple[str, Callable[[], list[tuple[dict[str, str], float]]]]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        self.requests[(method, route, status)] += 1
        key = (method, route)
        counts = self.latency.setdefault(key, [0.0] * (len(BUCKETS) + 1))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.latency_sum[key] += seconds

    def gauge(
        self, name: str, help_: str, read: Callable[[], list[tuple[dict[str, str], float]]]
    ) -> None:
        """Register a gauge: ``read()`` returns (labels, value) pairs when scraped."""
        self.gauges[name] = (help_, read)

    def render(self) -> str:
        """The Prometheus text exposition."""
        lines = [
            "# HELP villagecast_http_requests_total HTTP requests by method, route and status.",
            "# TYPE villagecast_http_requests_total counter",
        ]
        for (method, route, status), n in sorted(self.requests.items()):
            lines.append(
                f'villagecast_http_requests_total{{method="{method}",route="{_esc(route)}",'
                f'status="{status}"}} {n}'
            )
        lines += [
            "# HELP villagecast_http_request_seconds HTTP request latency.",
            "# TYPE villagecast_http_request_seconds histogram",
        ]
        for (method, route), counts in sorted(self.latency.items()):
            labels = f'method="{method}",route="{_esc(route)}"'
            for bound, hits in zip(BUCKETS, counts, strict=False):
                lines.append(
                    f'villagecast_http_request_seconds_bucket{{{labels},le="{bound}"}} {hits:g}'
                )
            lines.append(
                f'villagecast_http_request_seconds_bucket{{{labels},le="+Inf"}} {counts[-1]:g}'
            )
            lines.append(f"villagecast_http_request_seconds_count{{{labels}}} {counts[-1]:g}")
            seconds = self.latency_sum[(method, route)]
            lines.append(f"villagecast_http_request_seconds_sum{{{labels}}} {seconds:.6f}")
        for name, (help_, read) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
            for gauge_labels, value in read():
                lab = ",".join(f'{k}="{_esc(v)}"' for k, v in sorted(gauge_labels.items()))
                lines.append(f"{name}{{{lab}}} {value:g}" if lab else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


METRICS = web.AppKey("metrics", Metrics)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests and their latency by route template (not by raw path)."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        if METRICS in request.app:
            request.app[METRICS].observe(request.method, route, status, time.perf_counter() - start)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers (a 503 problem with Retry-After while it does not)."""
    reason = await ping(request.app[ENGINE])
    if reason is not None:
        return database_unavailable(request, reason)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    return web.Response(
        text=request.app[METRICS].render(), content_type="text/plain", charset="utf-8"
    )


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI description of every route of this server."""
    return web.json_response(openapi.describe(request.app), dumps=_dumps)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def setup(app: web.Application) -> None:
    """Register /healthz, /metrics, the OpenAPI description and the events WebSocket."""
    app[METRICS] = Metrics()
    app[METRICS].gauge(
        "villagecast_event_subscribers",
        "Open /api/v1/events subscriptions.",
        lambda: [({}, float(app[EVENTS].subscriber_count))],
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi_json)
    events_api.setup(app)

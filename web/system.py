"""Liveness, Prometheus metrics and the OpenAPI description."""

from __future__ import annotations

import ipaddress
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import web

from devices.errors import ForbiddenError
from devices.tokens import tokens_equal

from . import events_api, openapi
from .auth import bearer_token
from .db import ping
from .keys import ENGINE, EVENTS, SETTINGS
from .problems import database_unavailable
from .ratelimit import parse_networks
from .settings import SettingsError

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
_METRICS_NETWORKS = web.AppKey("metrics_networks", tuple)


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


# Pages load only their own scripts, styles and media; the QR preview is a data: image, the
# recorder's preview a blob:, hls.js may start a blob: worker; nothing may frame the console.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A Content-Security-Policy on every HTML page, and ``nosniff`` on every answer."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.setdefault("X-Content-Type-Options", "nosniff")
        raise
    if not response.prepared:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.content_type == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


class MetricsForbidden(ForbiddenError):
    """Metrics are served to loopback, the configured addresses or the metrics token only."""

    title_ko = "메트릭은 허용된 주소나 토큰으로만 볼 수 있습니다"


def _may_scrape(request: web.Request) -> bool:
    settings = request.app[SETTINGS]
    token = bearer_token(request)
    if settings.metrics_token and token and tokens_equal(token, settings.metrics_token):
        return True
    try:
        ip = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(ip in net for net in request.app[_METRICS_NETWORKS])


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
    """Prometheus text exposition (loopback, ``metrics_allow`` or the ``metrics_token`` only)."""
    if not _may_scrape(request):
        raise MetricsForbidden("send the metrics token, or scrape from an allowed address")
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
    try:
        app[_METRICS_NETWORKS] = parse_networks(app[SETTINGS].metrics_allow)
    except ValueError as exc:
        raise SettingsError(f"VILLAGECAST_METRICS_ALLOW: {exc}") from None
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

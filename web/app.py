"""The application factory: settings in, a wired aiohttp app out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from devices.events import EventBus

from . import (
    api_accounts,
    api_alerts,
    api_announcements,
    api_broadcasts,
    api_dashboard,
    api_devices,
    api_notices,
    api_regions,
    limits,
    live,
    pages,
    streams,
    system,
)
from .db import make_engine, make_sessionmaker, migrate
from .keys import ENGINE, EVENTS, SESSIONMAKER, SETTINGS
from .problems import problem_middleware
from .ratelimit import forwarded_middleware, parse_networks
from .settings import Settings, SettingsError

# Order matters: each module's cleanup context starts after the previous ones (database first,
# then recordings, streaming, broadcast) and stops in reverse order.
FEATURES = (
    system,
    limits,
    api_accounts,
    api_regions,
    api_devices,
    api_announcements,
    streams,
    api_broadcasts,
    api_notices,
    api_alerts,
    live,
    api_dashboard,
    pages,
)


def create_app(settings: Settings) -> web.Application:
    """A villagecast server for these settings (database migrated on startup)."""
    try:
        proxies = parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SettingsError(f"VILLAGECAST_TRUSTED_PROXIES: {exc}") from None
    app = web.Application(
        middlewares=[
            forwarded_middleware(proxies),
            system.security_headers,
            system.metrics_middleware,
            problem_middleware,
        ],
        client_max_size=settings.max_upload_bytes + 1024 * 1024,
    )
    app[SETTINGS] = settings
    app[EVENTS] = EventBus()
    app.cleanup_ctx.append(_database)
    for feature in FEATURES:
        feature.setup(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    await migrate(engine)
    app[ENGINE] = engine
    app[SESSIONMAKER] = make_sessionmaker(engine)
    yield
    await engine.dispose()

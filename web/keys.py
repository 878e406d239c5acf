"""Typed application keys shared by the web modules."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from broadcast.onair import OnAir
from devices.events import EventBus

from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[Any])
EVENTS = web.AppKey("events", EventBus)
ONAIR = web.AppKey("onair", OnAir)  # the one door to the air (scheduler and live desk inside)

"""(stub — filled in by the feature's issue)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register this module's routes and services."""

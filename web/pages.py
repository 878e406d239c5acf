"""The console (``/``), its login page, the resident page (``/listen``), static files, PWA shell.

No front-end build step: the pages are plain HTML in ``web/templates`` and JS modules and CSS in
``web/static``. Every asset URL in a page carries ``?v=<hash of the static tree>``, so assets can be
cached for a long time and still change with each release; unversioned requests revalidate (ETag).
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from aiohttp import web

from devices.errors import VillagecastError

from . import auth

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"

ASSET_VERSION = web.AppKey("asset_version", str)

# Versioned URLs (?v=…) may be cached for a year; others revalidate with their ETag every time.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"
PAGE_CACHE = "no-store"

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("image/svg+xml", ".svg")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "microphone=(self), camera=()",
}


def asset_version(root: Path = STATIC_DIR) -> str:
    """A short hash of every static file's name, size and modification time."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def render_page(request: web.Request, name: str) -> web.Response:
    """A page from ``web/templates`` with its asset version filled in."""
    html = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
    html = html.replace("{{v}}", request.app[ASSET_VERSION])
    headers = {"Cache-Control": PAGE_CACHE, **SECURITY_HEADERS}
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)


async def console(request: web.Request) -> web.StreamResponse:
    """The staff console; anonymous visitors go to the login page."""
    try:
        account = await auth.current_account(request)
    except VillagecastError:  # a revoked token is the same as no login here
        account = None
    if account is None:
        raise web.HTTPFound("/login")
    return render_page(request, "console.html")


async def login(request: web.Request) -> web.StreamResponse:
    """The login page (staff already logged in go to the console)."""
    try:
        account = await auth.current_account(request)
    except VillagecastError:  # a revoked token: show the form
        account = None
    if account is not None:
        raise web.HTTPFound("/")
    return render_page(request, "login.html")


async def listen(request: web.Request) -> web.StreamResponse:
    """The resident page: register, listen, replay."""
    return render_page(request, "listen.html")


async def manifest(request: web.Request) -> web.StreamResponse:
    """The web app manifest of the resident page."""
    return _file(request, STATIC_DIR / "manifest.webmanifest", REVALIDATE)


async def service_worker(request: web.Request) -> web.StreamResponse:
    """The service worker that caches the resident page's shell (served from the root scope)."""
    response = _file(request, STATIC_DIR / "sw.js", "no-cache")
    response.headers["Service-Worker-Allowed"] = "/"
    return response


async def static(request: web.Request) -> web.StreamResponse:
    """A file under ``web/static``, with caching headers; nothing outside it."""
    rel = request.match_info["path"]
    try:
        path = (STATIC_DIR / rel).resolve()
        path.relative_to(STATIC_DIR.resolve())
    except (ValueError, OSError):
        raise web.HTTPNotFound() from None
    if not path.is_file():
        raise web.HTTPNotFound()
    cache = IMMUTABLE if request.query.get("v") == request.app[ASSET_VERSION] else REVALIDATE
    return _file(request, path, cache)


async def favicon(request: web.Request) -> web.StreamResponse:
    """The site icon."""
    return _file(request, STATIC_DIR / "icons" / "icon.svg", REVALIDATE)


def _file(request: web.Request, path: Path, cache: str) -> web.FileResponse:
    response = web.FileResponse(path, headers={"Cache-Control": cache, **SECURITY_HEADERS})
    ctype, _ = mimetypes.guess_type(path.name)
    if ctype:
        response.content_type = ctype
    return response


def setup(app: web.Application) -> None:
    """Register the pages, static files, manifest and service worker."""
    app[ASSET_VERSION] = asset_version()
    app.router.add_get("/", console)
    app.router.add_get("/login", login)
    app.router.add_get("/listen", listen)
    app.router.add_get("/manifest.webmanifest", manifest)
    app.router.add_get("/sw.js", service_worker)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/static/{path:.+}", static)

"""The browser pages: the wallboard, the supervisor view, the login page, their assets.

Pages and assets are package data (``callfloor/web/static/``), read once through
:mod:`importlib.resources` and served as they are: plain HTML, CSS and modern
JavaScript, no CDN and no build step. Every page and asset is answered with a strict
``Content-Security-Policy`` (scripts, styles and connections to this service only),
``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` (a signed link
never leaks through a ``Referer``).

The pages read only through the routes any client has (the board streams,
``/api/v1/session``); access control treats them as reads, except the login page and
the assets (:data:`~callfloor.web.auth.ROUTE_NEEDS`), which hold nothing of the floor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Final

from aiohttp import web

from callfloor.web import auth
from callfloor.web.errors import json_error

__all__ = ["ASSETS", "Asset", "add_routes"]

_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
}

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Asset:
    """One file of ``callfloor/web/static``: its bytes, content type and ETag."""

    __slots__ = ("body", "content_type", "etag")

    def __init__(self, name: str, body: bytes) -> None:
        self.body = body
        suffix = name[name.rfind(".") :]
        self.content_type = _TYPES.get(suffix, "application/octet-stream")
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def _load() -> dict[str, Asset]:
    folder = resources.files("callfloor.web").joinpath("static")
    return {
        item.name: Asset(item.name, item.read_bytes())
        for item in folder.iterdir()
        if item.is_file() and not item.name.startswith(".")
    }


ASSETS: Final = _load()
"""Every asset by file name, read once at import."""


def _answer(request: web.Request, asset: Asset) -> web.Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache"}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})


def _page(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    asset = ASSETS[name]

    async def page(request: web.Request) -> web.Response:
        return _answer(request, asset)

    page.__doc__ = f"The page {name}."
    return page


async def static(request: web.Request) -> web.Response:
    """One asset of ``callfloor/web/static`` by file name (nothing else is reachable)."""
    name = request.match_info["name"]
    asset = ASSETS.get(name)
    if asset is None:
        return json_error(404, f"no such asset: {name[:80]!r}")
    return _answer(request, asset)


# Page routes: path, asset, route name.
PAGE_ROUTES: Final = (
    ("/", "wallboard.html", "index"),
    ("/wallboard", "wallboard.html", "wallboard"),
    ("/supervisor", "supervisor.html", "supervisor"),
    ("/api", "api.html", "api_index"),
)


def add_routes(app: web.Application) -> None:
    """Register the pages, the login page and the assets (and their access needs)."""
    get = app.router.add_get
    for path, asset, name in PAGE_ROUTES:
        get(path, _page(asset), name=name)
        auth.PAGES.add(name)
    get("/login", _page("login.html"), name="login")
    get("/static/{name}", static, name="static")
    auth.ROUTE_NEEDS["login"] = auth.Need.OPEN
    auth.ROUTE_NEEDS["static"] = auth.Need.OPEN

"""JSON answers and errors: every error body is JSON with an ``error`` message.

The middleware turns aiohttp's own errors (404, 405, ...) and any unexpected
exception into JSON answers (a 500 is logged with its traceback; the service goes
on), counts requests by route name and error answers by status code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from callfloor.web.floor import floor_of

log = logging.getLogger("callfloor.web")

JSON = "application/json"


def json_body(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An already encoded JSON body."""
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``data`` encoded as JSON."""
    return json_body(msgspec.json.encode(data), status, headers)


def json_error(
    status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    """An error answer: ``{"error": message, ...extra}``."""
    return json_response({"error": message, **extra}, status, headers)


def _message(exc: web.HTTPException, request: web.Request) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed on {request.path}; use {allowed}"
    if isinstance(exc, web.HTTPNotFound):
        return f"no such endpoint: {request.path} (GET / lists the endpoints)"
    return exc.reason


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request; answer every error as JSON (see the module docstring)."""
    route = request.match_info.route.name or "other"
    stats = floor_of(request).stats
    stats.http_requests_total[route] = stats.http_requests_total.get(route, 0) + 1
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        keep = {
            k: v
            for k, v in exc.headers.items()
            if k.lower() not in ("content-type", "content-length")
        }
        response = json_error(exc.status, _message(exc, request), keep)
    except Exception:
        log.exception("http_error method=%s path=%s", request.method, request.path)
        response = json_error(500, "internal error (logged); the service goes on")
    if response.status >= 400:
        code = str(response.status)
        stats.http_errors_total[code] = stats.http_errors_total.get(code, 0) + 1
    return response

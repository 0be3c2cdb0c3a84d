"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web

from callfloor.web.errors import json_response
from callfloor.web.floor import floor_of


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the event loop answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when events are taken now; 503 while starting (a source has not
    been up yet), stopping, overloaded (the backlog is full) or degraded (a source is
    being restarted, or the store fails)."""
    ready, detail = floor_of(request).readiness()
    return json_response(detail, 200 if ready else 503)

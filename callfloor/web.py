"""HTTP API (aiohttp): metrics, the live document, ingest, health.

Every read advances the processor to now first (through the service), so a
document or a scrape reflects every change up to exactly its time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from callfloor.ingest.decode import decode_body

if TYPE_CHECKING:
    from callfloor.service import FloorService

SERVICE_KEY: web.AppKey[FloorService] = web.AppKey("service")
MAX_BODY_BYTES = 16 * 1024 * 1024

_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>callfloor</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:46rem}
code{background:#eee;padding:0 .3em}</style></head><body>
<h1>callfloor</h1>
<p>Real-time call-floor monitoring. Endpoints:</p>
<ul>
<li><a href="/metrics"><code>/metrics</code></a> Prometheus exposition</li>
<li><a href="/api/v1/snapshot"><code>/api/v1/snapshot</code></a> the whole live state document</li>
<li><a href="/api/v1/queues"><code>/api/v1/queues</code></a> queues and sites,
<code>/api/v1/queues/{name}</code> one queue</li>
<li><a href="/api/v1/agents"><code>/api/v1/agents</code></a> agents,
<code>/api/v1/agents/{name}</code> one agent</li>
<li><a href="/api/v1/violations"><code>/api/v1/violations</code></a> idle-time violations
(<code>?active=true</code> for active only)</li>
<li><code>/api/v1/changes</code> Server-Sent Events: what changed, every tick</li>
<li><code>POST /api/v1/events</code> ingest: one JSON event, a JSON array, or NDJSON</li>
<li><a href="/healthz"><code>/healthz</code></a>, <a href="/readyz"><code>/readyz</code></a></li>
</ul></body></html>
"""


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


def _service(request: web.Request) -> FloorService:
    return request.app[SERVICE_KEY]


def _count(request: web.Request, route: str) -> None:
    counts = _service(request).stats.http_requests_total
    counts[route] = counts.get(route, 0) + 1


async def index(request: web.Request) -> web.Response:
    """A page listing the endpoints."""
    _count(request, "index")
    return web.Response(text=_INDEX, content_type="text/html")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition at the current time."""
    _count(request, "metrics")
    from callfloor.metrics import CONTENT_TYPE, render_service

    service = _service(request)
    service.read()
    body = render_service(service)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def snapshot(request: web.Request) -> web.Response:
    """The SPEC §7 document, live."""
    _count(request, "snapshot")
    return _json(_service(request).document())


async def queues(request: web.Request) -> web.Response:
    """Queues and sites of the live document."""
    _count(request, "queues")
    doc = _service(request).document()
    return _json({"as_of": doc["as_of"], "queues": doc["queues"], "sites": doc["sites"]})


async def queue(request: web.Request) -> web.Response:
    """One queue, 404 if unknown."""
    _count(request, "queue")
    doc = _service(request).document()
    name = request.match_info["name"]
    found = doc["queues"].get(name)  # type: ignore[attr-defined]
    if found is None:
        return _json({"error": f"unknown queue {name!r}"}, status=404)
    return _json({"as_of": doc["as_of"], "name": name, **found})


async def agents(request: web.Request) -> web.Response:
    """Agents of the live document."""
    _count(request, "agents")
    doc = _service(request).document()
    return _json({"as_of": doc["as_of"], "agents": doc["agents"]})


async def agent(request: web.Request) -> web.Response:
    """One agent with its violations, 404 if unknown."""
    _count(request, "agent")
    doc = _service(request).document()
    name = request.match_info["name"]
    found = doc["agents"].get(name)  # type: ignore[attr-defined]
    if found is None:
        return _json({"error": f"unknown agent {name!r}"}, status=404)
    own = [v for v in doc["violations"] if v["agent"] == name]  # type: ignore[attr-defined]
    return _json({"as_of": doc["as_of"], "name": name, **found, "violations": own})


async def violations(request: web.Request) -> web.Response:
    """Violations; ``?active=true`` keeps the active ones only."""
    _count(request, "violations")
    doc = _service(request).document()
    items = doc["violations"]
    active = request.query.get("active", "").lower()
    if active not in ("", "true", "false", "1", "0"):
        return _json({"error": "active must be true or false"}, status=400)
    if active in ("true", "1"):
        items = [v for v in items if v["ended_at"] is None]  # type: ignore[attr-defined]
    return _json({"as_of": doc["as_of"], "violations": items})


async def changes(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one ``changes`` event per tick in which something changed."""
    _count(request, "changes")
    service = _service(request)
    queue = service.subscribe()
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        while (message := await queue.get()) is not None:
            await response.write(b"event: changes\ndata: " + msgspec.json.encode(message) + b"\n\n")
    finally:
        service.unsubscribe(queue)
    return response


async def ingest(request: web.Request) -> web.Response:
    """Accept events: one object, a JSON array or NDJSON. 202 with per-event rejections."""
    _count(request, "ingest")
    from callfloor.service import EventBatch

    body = await request.read()
    service = _service(request)
    events, rejections = decode_body(body, not_after=service.not_after())
    details = [
        {"index": r.index, "reason": r.reason, "field": r.field, "message": r.message}
        for r in rejections
    ]
    if not events and not rejections:
        return _json({"error": "empty body: send a JSON event, a JSON array or NDJSON"}, 400)
    if not events:
        for r in rejections:
            service.proc.count_rejected(r.reason)
        return _json({"accepted": 0, "rejected": details}, status=400)
    if not service.submit_nowait(EventBatch(events, rejections, source="http")):
        return web.Response(
            body=msgspec.json.encode({"error": "ingest queue full, retry later"}),
            status=503,
            content_type="application/json",
            headers={"Retry-After": "1"},
        )
    return _json({"accepted": len(events), "rejected": details}, status=202)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the event loop answers."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: started, and the ingest queue is not close to full."""
    service = _service(request)
    if not service.started.is_set():
        return _json({"status": "starting"}, status=503)
    if service.pending_batches >= 0.9 * service.queue_capacity:
        return _json({"status": "overloaded", "pending_batches": service.pending_batches}, 503)
    return _json({"status": "ready", "pending_batches": service.pending_batches})


def make_app(service: FloorService) -> web.Application:
    """The aiohttp application for ``service``."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SERVICE_KEY] = service
    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/snapshot", snapshot)
    app.router.add_get("/api/v1/queues", queues)
    app.router.add_get("/api/v1/queues/{name}", queue)
    app.router.add_get("/api/v1/agents", agents)
    app.router.add_get("/api/v1/agents/{name}", agent)
    app.router.add_get("/api/v1/violations", violations)
    app.router.add_get("/api/v1/changes", changes)
    app.router.add_post("/api/v1/events", ingest)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app

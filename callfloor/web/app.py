"""The aiohttp application: routes (named, for the request counter and access control),
the JSON error layer and access control (:mod:`~callfloor.web.auth`)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from callfloor.ingest.posted import feeds_of
from callfloor.web import alerts, auth, boards, changes, health, hosts, ingest, login, pages, reads
from callfloor.web.errors import json_errors
from callfloor.web.floor import FLOOR, Floor


def make_app(floor: Floor) -> web.Application:
    """The application serving ``floor``."""
    # Bodies are read by the ingest route with its own limit ([limits] max_body).
    # The Host check and access control run inside the JSON error layer, so 421, 401
    # and 403 are counted; the Host check first, so that a rebinding page learns nothing
    # from which refusal it gets. A signed link is exchanged for its cookie before
    # access control would send its page to the login page.
    http = floor.config.http
    app = web.Application(
        middlewares=[json_errors, hosts.host_check, login.link_exchange, auth.access_control],
        client_max_size=floor.config.limits.max_body_bytes,
    )
    app[FLOOR] = floor
    app[auth.ACCESS] = auth.Access.from_config(http)
    app[hosts.HOSTS] = hosts.Hosts(floor.host, http.allowed_hosts)
    app[ingest.DECODE_LANE] = asyncio.Semaphore(1)
    app[ingest.BODY_BUDGET] = ingest.BodyBudget(
        floor.config.limits.max_inflight_body_bytes, floor.stats
    )
    get = app.router.add_get
    get("/metrics", reads.metrics, name="metrics")
    get("/api/v1/snapshot", reads.snapshot, name="snapshot")
    get("/api/v1/queues", reads.queues, name="queues")
    get("/api/v1/queues/{name}", reads.queue, name="queue")
    get("/api/v1/agents", reads.agents, name="agents")
    get("/api/v1/agents/{name}", reads.agent, name="agent")
    get("/api/v1/violations", reads.violations, name="violations")
    get("/api/v1/changes", changes.changes, name="changes")
    app.router.add_post("/api/v1/events", ingest.ingest, name="ingest")
    # Feeds posted over HTTP ([[sources]] kind = "connect", ingest = true): their own
    # route each, /api/v1/feeds/<source name>, written like the ingest route.
    for feed in feeds_of(floor):
        app.router.add_post(feed.route, ingest.feed_ingest(feed.decode), name=f"feed:{feed.name}")
    get("/healthz", health.healthz, name="healthz")
    get("/readyz", health.readyz, name="readyz")
    # The browser: pages and assets, sessions, the board streams.
    pages.add_routes(app)
    login.add_routes(app)
    boards.add_routes(app, floor)
    alerts.add_routes(app)
    return app

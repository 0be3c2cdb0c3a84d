"""Read routes over real HTTP: per-entity reads, agents' identity, violations, health."""

from __future__ import annotations

import aiohttp
from helpers import T0, ev
from live import FakeClock, get, ndjson, post, running

LATE = T0 - 30


async def test_unknown_queue_and_agent_are_404() -> None:
    """Asking for a queue or agent that does not exist gives a JSON 404 naming it."""
    async with running() as (_, base), aiohttp.ClientSession() as http:
        for path in ("/api/v1/queues/nope", "/api/v1/agents/nope"):
            status, body = await get(http, base, path)
            assert status == 404 and "'nope'" in body["error"]


async def test_health_and_readiness() -> None:
    """/healthz and /readyz answer 200 on a running service; /readyz lists the sources."""
    async with running() as (_, base), aiohttp.ClientSession() as http:
        assert (await get(http, base, "/healthz"))[0] == 200
        status, ready = await get(http, base, "/readyz")
    assert status == 200
    assert ready["status"] == "ready" and ready["sources"]["http"]["state"] == "up"


async def test_one_queue_is_rendered_on_its_own() -> None:
    """/api/v1/queues/{name} has the queue's site, windows and live values at as_of."""
    body = ndjson(
        ev("call_queued", LATE, call_id="c1", queue="sales", site="sh"),
        ev("call_queued", LATE, call_id="c2", queue="other"),
    )
    async with running() as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, body)
        await service.next_tick()
        status, found = await get(http, base, "/api/v1/queues/sales")
    assert status == 200
    assert (found["name"], found["site"], found["live"]["waiting"]) == ("sales", "sh", 1)
    assert set(found["windows"]) == {"15m", "60m", "interval", "today"}
    assert found["as_of"] == service.view.as_of


async def test_agent_endpoints_return_name_and_team() -> None:
    """The name and team an agent_state carries come back from both agent endpoints."""
    body = ndjson(
        ev(
            "agent_state",
            LATE,
            agent="a1",
            state="available",
            name="Ann Lee",
            team="blue",
            queues=["sales"],
        )
    )
    async with running() as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, body)
        await service.next_tick()
        _, one = await get(http, base, "/api/v1/agents/a1")
        _, many = await get(http, base, "/api/v1/agents")
    assert (one["name"], one["display_name"], one["team"]) == ("a1", "Ann Lee", "blue")
    assert one["state"] == "available" and one["queues"] == ["sales"]
    listed = many["agents"]["a1"]
    assert (listed["display_name"], listed["team"], listed["state"]) == (
        "Ann Lee",
        "blue",
        "available",
    )


async def test_violations_filter_active() -> None:
    """?active=true lists active violations only; a bad value is a 400."""
    clock = FakeClock()
    async with running(clock=clock) as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, ndjson(ev("agent_state", T0 - 2, agent="a1", state="wrap_up")))
        clock.t = T0 + 200
        await service.next_tick()
        _, active = await get(http, base, "/api/v1/violations?active=true")
        _, ended = await get(http, base, "/api/v1/violations?active=false")
        status, bad = await get(http, base, "/api/v1/violations?active=maybe")
    assert [v["kind"] for v in active["violations"]] == ["wrap_up_exceeded"]
    assert ended["violations"] == []
    assert status == 400 and "active" in bad["error"]


async def test_requests_are_counted_by_route() -> None:
    """Each answered request counts under its route's name."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        await get(http, base, "/api/v1/snapshot")
        await get(http, base, "/api/v1/queues/x")
        await get(http, base, "/healthz")
    counts = service.stats.http_requests_total
    assert (counts["snapshot"], counts["queue"], counts["healthz"]) == (1, 1, 1)


async def test_metrics_show_the_service_counters() -> None:
    """/metrics is the text exposition, with the events applied and the pending gauge."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, ndjson(ev("call_queued", LATE, call_id="c1", queue="q")))
        await post(http, base, ndjson(ev("call_queued", T0 + 60, call_id="c2", queue="q")))
        await service.next_tick()
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
    assert 'callfloor_ingest_events_total{source="http"} 2' in text
    assert "callfloor_ingest_pending_events 1" in text

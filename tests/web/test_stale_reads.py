"""Reads of a floor served stale (its partition's lease lost) over real HTTP.

The service's one partition is dropped as a lost lease drops it (no checkpoint), so it
is served frozen; the clock is moved by hand, so "frozen" is exact: nothing a reader
gets moves with it, and every answer says which sites are stale, since when.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from helpers import T0, ev
from live import FakeClock, ndjson, post, running
from prometheus_client.parser import text_string_to_metric_families

from callfloor.store.base import ALL
from callfloor.web.reads import STALE_HEADER

LATE = T0 - 30
FLOOR = ndjson(
    ev("call_queued", LATE, call_id="c1", queue="sales", site="north"),
    ev("agent_state", LATE, agent="a1", state="available", site="north", queues=["sales"]),
)
READS = (
    "/api/v1/snapshot",
    "/api/v1/queues",
    "/api/v1/agents",
    "/api/v1/violations",
    "/api/v1/queues/sales",
    "/api/v1/agents/a1",
)


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, str | None]:
    async with http.get(url) as resp:
        return resp.status, await resp.json(), resp.headers.get(STALE_HEADER)


async def test_every_read_of_a_stale_floor_is_frozen_and_marked() -> None:
    """Once the partition is frozen, every floor read answers at its last as_of however
    far the clock moves (the wait does not grow), with a stale mark in the body and the
    Callfloor-Stale header giving since when."""
    clock = FakeClock()
    async with running(clock=clock) as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, FLOOR)
        await service.next_tick()
        _, live, header = await _get(http, base + "/api/v1/snapshot")
        assert "stale" not in live and header is None
        clock.t += 5
        await service.next_tick()
        await service.writer.drop(ALL, checkpoint=False)
        since = service.writer.frozen[ALL].since
        as_of = service.writer.frozen[ALL].proc.clock
        answers = {}
        for path in READS:
            answers[path] = await _get(http, base + path)
        clock.t += 60
        await service.next_tick()
        for path in READS:
            assert await _get(http, base + path) == answers[path], path
    assert since == T0 + 5
    mark = {"partition": ALL, "since": since, "as_of": as_of}
    for path, (status, body, header) in answers.items():
        assert status == 200, path
        assert body["as_of"] == as_of, path
        assert header is not None and float(header) == since, path
        if path.count("/") == 4:  # one queue, one agent: their site's mark
            assert body["stale"] == mark, path
        else:
            assert body["stale"] == {"north": mark}, path
    snapshot = answers["/api/v1/snapshot"][1]
    assert snapshot["queues"]["sales"]["live"]["waiting"] == 1
    assert snapshot["queues"]["sales"]["live"]["longest_wait_s"] == as_of - LATE
    assert list(snapshot) == [
        "as_of",
        "queues",
        "sites",
        "agents",
        "violations",
        "alerts",
        "counters",
        "stale",
    ]


async def test_readyz_is_degraded_while_a_partition_is_stale() -> None:
    """/readyz says degraded (503) and lists the stale partition: since when, the as_of it
    is frozen at and its sites; an empty stale object when all is live."""
    clock = FakeClock()
    async with running(clock=clock) as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, FLOOR)
        await service.next_tick()
        status, ready, _ = await _get(http, base + "/readyz")
        assert (status, ready["status"], ready["stale"]) == (200, "ready", {})
        await service.writer.drop(ALL, checkpoint=False)
        status, ready, _ = await _get(http, base + "/readyz")
    frozen = service.writer.frozen[ALL]
    assert (status, ready["status"], ready["partitions"]) == (503, "degraded", [])
    assert ready["stale"] == {
        ALL: {"since": frozen.since, "as_of": frozen.proc.clock, "sites": ["north"]}
    }


async def test_metrics_leave_a_stale_partition_out_and_say_since_when() -> None:
    """/metrics exports no queue, site or agent-count series of a partition not applied,
    and callfloor_partition_stale_since_seconds{partition} says since when."""
    clock = FakeClock()
    async with running(clock=clock) as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, FLOOR)
        await service.next_tick()
        async with http.get(base + "/metrics") as resp:
            before = await resp.text()
        await service.writer.drop(ALL, checkpoint=False)
        async with http.get(base + "/metrics") as resp:
            after = await resp.text()

    def samples(text: str) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, []).append(dict(s.labels) | {"value": str(s.value)})
        return out

    was, now = samples(before), samples(after)
    assert was["callfloor_queue_waiting_calls"] and was["callfloor_site_waiting_calls"]
    assert "callfloor_queue_waiting_calls" not in now
    assert "callfloor_site_waiting_calls" not in now
    assert "callfloor_queue_info" not in now
    assert "callfloor_partition_stale_since_seconds" not in was
    [gauge] = now["callfloor_partition_stale_since_seconds"]
    assert gauge == {"partition": ALL, "value": str(service.writer.frozen[ALL].since)}

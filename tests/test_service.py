"""The live service over real HTTP: ingest, documents, health, back-pressure, clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from helpers import T0, config, decode, ev

from callfloor.service import EventBatch, FloorService


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def live() -> AsyncIterator[tuple[FloorService, FakeClock, str]]:
    clock = FakeClock(T0)
    service = FloorService(config(), clock=clock, host="127.0.0.1", port=0, tick_s=0.01)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.started.wait(), 5)
    yield service, clock, f"http://127.0.0.1:{service.bound_port}"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _settle(service: FloorService) -> None:
    for _ in range(100):
        if service.pending_batches == 0:
            await asyncio.sleep(0.01)
            return
        await asyncio.sleep(0.01)


async def _post_then_read(service: FloorService, base: str, body: str) -> dict:
    """POST one body, wait for the ingest task, and return the live document."""
    async with aiohttp.ClientSession() as http:
        await http.post(f"{base}/api/v1/events", data=body)
        await _settle(service)
        async with http.get(f"{base}/api/v1/snapshot") as resp:
            doc: dict = await resp.json()
    return doc


async def test_posted_events_appear_in_the_snapshot(
    live: tuple[FloorService, FakeClock, str],
) -> None:
    """Events POSTed as NDJSON are applied and show in /api/v1/snapshot."""
    service, _clock, base = live
    body = (
        f'{{"type":"call_queued","ts":{T0 - 30},"call_id":"c1","queue":"sales"}}\n'
        f'{{"type":"call_queued","ts":{T0 - 30},"queue":"sales"}}\n'
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/events", data=body) as resp:
            assert resp.status == 202
            reply = await resp.json()
        assert reply["accepted"] == 1
        assert reply["rejected"][0]["field"] == "call_id"
        await _settle(service)
        async with http.get(f"{base}/api/v1/snapshot") as resp:
            doc = await resp.json()
    live_q = doc["queues"]["sales"]["live"]
    assert live_q["waiting"] == 1
    assert live_q["longest_wait_s"] == pytest.approx(30 - service.watermark_delay_s)
    assert doc["counters"]["rejected"] == 1


async def test_wait_grows_with_the_clock_alone(live: tuple[FloorService, FakeClock, str]) -> None:
    """With no new events, the longest wait grows as the wall clock moves."""
    service, clock, base = live
    service.submit_nowait(EventBatch([]))
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{base}/api/v1/events",
            data=f'{{"type":"call_queued","ts":{T0},"call_id":"c1","queue":"q"}}',
        )
        await _settle(service)
        clock.t = T0 + 61
        async with http.get(f"{base}/api/v1/queues/q") as resp:
            body = await resp.json()
    assert body["live"]["longest_wait_s"] == pytest.approx(60.0)
    assert body["windows"]["15m"]["sl_offered"] == 1


async def test_all_invalid_body_is_400_and_counted(
    live: tuple[FloorService, FakeClock, str],
) -> None:
    """A body with only invalid events is rejected with 400 and each one is counted."""
    service, _, base = live
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/api/v1/events", data=b'[{"type":"nope","ts":1}]') as resp,
    ):
        assert resp.status == 400
        reply = await resp.json()
    assert reply["rejected"][0]["reason"] == "unknown_type"
    assert service.proc.rejected_by_reason == {"unknown_type": 1}


async def test_far_future_events_are_rejected(live: tuple[FloorService, FakeClock, str]) -> None:
    """An event far ahead of the wall clock is rejected as ts_in_future, not applied."""
    service, _, base = live
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{base}/api/v1/events",
            data=f'{{"type":"call_queued","ts":{T0 + 86400},"call_id":"c1","queue":"q"}}',
        )
    await _settle(service)
    assert service.proc.rejected_by_reason == {"ts_in_future": 1}
    assert "q" not in service.proc.queues


async def test_unknown_queue_and_agent_are_404(live: tuple[FloorService, FakeClock, str]) -> None:
    """Asking for a queue or agent that does not exist gives 404 with a message."""
    _, _, base = live
    async with aiohttp.ClientSession() as http:
        for path in ("/api/v1/queues/nope", "/api/v1/agents/nope"):
            async with http.get(base + path) as resp:
                assert resp.status == 404
                assert "unknown" in (await resp.json())["error"]


async def test_health_and_readiness(live: tuple[FloorService, FakeClock, str]) -> None:
    """/healthz and /readyz answer 200 on a running service."""
    _, _, base = live
    async with aiohttp.ClientSession() as http:
        for path in ("/healthz", "/readyz"):
            async with http.get(base + path) as resp:
                assert resp.status == 200


async def test_full_ingest_queue_answers_503_and_counts_the_drop() -> None:
    """When the ingest queue is full, HTTP ingest says 503 and the drop is counted."""
    service = FloorService(config(), clock=FakeClock(T0), max_pending_batches=1)
    assert service.submit_nowait(EventBatch([]))
    assert not service.submit_nowait(EventBatch([]))
    assert service.stats.dropped_batches_total == 1


async def test_violations_filter_active(live: tuple[FloorService, FakeClock, str]) -> None:
    """?active=true lists active violations only; a bad value is a 400."""
    service, clock, base = live
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{base}/api/v1/events",
            data=f'{{"type":"agent_state","ts":{T0},"agent":"a1","state":"wrap_up"}}',
        )
        await _settle(service)
        clock.t = T0 + 200
        async with http.get(f"{base}/api/v1/violations?active=true") as resp:
            active = (await resp.json())["violations"]
        async with http.get(f"{base}/api/v1/violations?active=maybe") as resp:
            assert resp.status == 400
    assert [v["kind"] for v in active] == ["wrap_up_exceeded"]


async def test_rejections_show_in_the_next_document(
    live: tuple[FloorService, FakeClock, str],
) -> None:
    """A document read right after an all-invalid POST counts the rejection (no stale cache)."""
    _, _, base = live
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/v1/snapshot") as resp:
            assert (await resp.json())["counters"]["rejected"] == 0
        async with http.post(f"{base}/api/v1/events", data=b'{"type":"nope","ts":1}') as resp:
            assert resp.status == 400
        async with http.get(f"{base}/api/v1/snapshot") as resp:
            assert (await resp.json())["counters"]["rejected"] == 1


async def test_changes_stream_pushes_what_an_event_changed(
    live: tuple[FloorService, FakeClock, str],
) -> None:
    """/api/v1/changes sends a Server-Sent Event naming the agent and site an event touched."""
    _, _, base = live
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/changes") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        await http.post(
            f"{base}/api/v1/events",
            data=f'{{"type":"agent_state","ts":{T0 - 5},"agent":"a1","state":"available",'
            f'"queues":["sales"]}}',
        )
        data = b""
        while not data.startswith(b"data: "):
            data = await asyncio.wait_for(stream.content.readline(), 5)
    message = json.loads(data[len(b"data: ") :])
    assert message["agents"] == ["a1"] and message["sites"] == ["default"]


def test_changes_are_drained_without_subscribers() -> None:
    """With nobody listening, each tick still drains the change set (no unbounded growth)."""
    service = FloorService(config(), clock=FakeClock(T0))
    service.proc.tick(T0)
    service.proc.apply(decode(ev("agent_state", T0, agent="a", state="wrap_up")))
    service.proc.tick(T0 + 500)
    service.publish_changes()
    assert not service.proc.drain_changes()


async def test_fresh_events_wait_for_the_watermark_and_are_not_late(
    live: tuple[FloorService, FakeClock, str],
) -> None:
    """An event newer than the watermark is held, then applied once it passes; not late."""
    service, clock, base = live
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{base}/api/v1/events",
            data=f'{{"type":"call_queued","ts":{T0 - 0.5},"call_id":"c1","queue":"q"}}',
        )
        await _settle(service)
        assert service.held_events == 1
        clock.t = T0 + 1
        async with http.get(f"{base}/api/v1/snapshot") as resp:
            doc = await resp.json()
    assert doc["queues"]["q"]["live"]["waiting"] == 1
    assert doc["counters"]["late"] == 0
    assert doc["as_of"] == T0


async def test_event_ahead_of_the_clock_does_not_move_documents_forward(
    live: tuple[FloorService, FakeClock, str],
) -> None:
    """An event two minutes ahead (within the skew) waits; as_of stays at the watermark."""
    service, _, base = live
    doc = await _post_then_read(
        service, base, f'{{"type":"call_queued","ts":{T0 + 120},"call_id":"c1","queue":"q"}}'
    )
    assert doc["as_of"] == T0 - service.watermark_delay_s
    assert "q" not in doc["queues"]


async def test_event_older_than_the_watermark_counts_late(
    live: tuple[FloorService, FakeClock, str],
) -> None:
    """An event that arrives after the watermark passed its ts is applied and counted late."""
    service, _, base = live
    doc = await _post_then_read(
        service, base, f'{{"type":"call_queued","ts":{T0 - 30},"call_id":"c1","queue":"q"}}'
    )
    assert doc["counters"]["late"] == 1
    assert doc["queues"]["q"]["live"]["waiting"] == 1


async def test_service_stops_promptly_with_a_change_stream_open() -> None:
    """Cancelling the service ends open /api/v1/changes streams instead of waiting on them."""
    service = FloorService(config(), clock=FakeClock(T0), host="127.0.0.1", port=0)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.started.wait(), 5)
    url = f"http://127.0.0.1:{service.bound_port}/api/v1/changes"
    async with aiohttp.ClientSession() as http, http.get(url) as stream:
        assert stream.status == 200
        task.cancel()
        started = asyncio.get_running_loop().time()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.get_running_loop().time() - started < 3

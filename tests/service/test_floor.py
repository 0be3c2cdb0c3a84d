"""The live service over real HTTP: events in, documents out, the watermark, ticks, rounds."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from helpers import T0, config, decode, ev
from live import FakeClock, get, ndjson, post, running

from callfloor.events import CallQueued, Event
from callfloor.ingest.source import Batch, Receipt
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.limits import Refusal
from callfloor.service import FloorService
from callfloor.store.memory import MemoryStore


async def test_posted_events_appear_in_the_snapshot() -> None:
    """Events POSTed as NDJSON are applied and show in /api/v1/snapshot at the next tick."""
    body = ndjson(ev("call_queued", T0 - 30, call_id="c1", queue="sales")) + (
        f'{{"type":"call_queued","ts":{T0 - 30},"queue":"sales"}}\n'.encode()
    )
    async with running() as (service, base), aiohttp.ClientSession() as http:
        status, reply = await post(http, base, body)
        await service.next_tick()
        _, doc = await get(http, base, "/api/v1/snapshot")
    assert status == 202
    assert reply["accepted"] == 1 and reply["rejected"][0]["field"] == "call_id"
    live_q = doc["queues"]["sales"]["live"]
    assert live_q["waiting"] == 1
    assert live_q["longest_wait_s"] == pytest.approx(30 - service.watermark_delay_s)
    assert doc["counters"]["rejected"] == 1


async def test_wait_grows_with_the_clock_alone() -> None:
    """With no new events, the longest wait grows as the wall clock moves (at the next tick)."""
    clock = FakeClock()
    async with running(clock=clock) as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, ndjson(ev("call_queued", T0, call_id="c1", queue="q")))
        clock.t = T0 + 61
        await service.next_tick()
        _, body = await get(http, base, "/api/v1/queues/q")
    assert body["live"]["longest_wait_s"] == pytest.approx(60.0)
    assert body["windows"]["15m"]["sl_offered"] == 1
    assert body["as_of"] == T0 + 60


async def test_all_invalid_body_is_400_and_counted() -> None:
    """A body with only invalid events is rejected with 400 and each one is counted."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        status, reply = await post(
            http, base, b'[{"type":"nope","ts":1}]', {"Content-Type": "application/json"}
        )
    assert status == 400
    assert reply["rejected"][0]["reason"] == "unknown_type"
    assert service.view.stats().rejected_by_reason == {"unknown_type": 1}


async def test_far_future_events_are_rejected() -> None:
    """An event far ahead of the wall clock is rejected as ts_in_future, not applied."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        status, reply = await post(
            http, base, ndjson(ev("call_queued", T0 + 86400, call_id="c1", queue="q"))
        )
    assert status == 400 and reply["rejected"][0]["reason"] == "ts_in_future"
    assert service.view.stats().rejected_by_reason == {"ts_in_future": 1}
    assert service.view.queue_names() == []


async def test_rejections_show_in_the_next_document() -> None:
    """A document read right after an all-invalid POST counts the rejection (no stale cache)."""
    async with running() as (_, base), aiohttp.ClientSession() as http:
        assert (await get(http, base, "/api/v1/snapshot"))[1]["counters"]["rejected"] == 0
        assert (await post(http, base, b'{"type":"nope","ts":1}'))[0] == 400
        assert (await get(http, base, "/api/v1/snapshot"))[1]["counters"]["rejected"] == 1


async def test_fresh_events_wait_for_the_watermark_and_are_not_late() -> None:
    """An event newer than the watermark is held, then applied once it passes; not late."""
    clock = FakeClock()
    async with running(clock=clock) as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, ndjson(ev("call_queued", T0 - 0.5, call_id="c1", queue="q")))
        assert service.held_events == 1
        clock.t = T0 + 1
        await service.next_tick()
        _, doc = await get(http, base, "/api/v1/snapshot")
    assert doc["queues"]["q"]["live"]["waiting"] == 1
    assert doc["counters"]["late"] == 0
    assert doc["as_of"] == T0


async def test_event_ahead_of_the_clock_does_not_move_documents_forward() -> None:
    """An event two minutes ahead (within the skew) waits; as_of stays at the watermark."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, ndjson(ev("call_queued", T0 + 120, call_id="c1", queue="q")))
        await service.next_tick()
        _, doc = await get(http, base, "/api/v1/snapshot")
    assert doc["as_of"] == T0 - service.watermark_delay_s
    assert "q" not in doc["queues"]


async def test_event_older_than_the_watermark_counts_late() -> None:
    """An event that arrives after the watermark passed its ts is applied and counted late."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, ndjson(ev("call_queued", T0 - 30, call_id="c1", queue="q")))
        await service.next_tick()
        _, doc = await get(http, base, "/api/v1/snapshot")
    assert doc["counters"]["late"] == 1
    assert doc["queues"]["q"]["live"]["waiting"] == 1


async def test_reads_within_a_tick_share_one_document() -> None:
    """Two snapshot reads between ticks return the same bytes, built once."""
    async with running(tick_s=3600) as (service, base), aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/v1/snapshot") as resp:
            first = await resp.read()
        built = service.document()
        async with http.get(f"{base}/api/v1/snapshot") as resp:
            second = await resp.read()
        assert service.document() is built
    assert first == second


async def test_one_store_append_per_round() -> None:
    """Batches queued together are appended to the store in one call before any is acked."""
    store = MemoryStore()
    acks: list[int] = []

    def ack(_receipt: Receipt) -> None:
        acks.append(store.appends)

    async with running(store=store, tick_s=3600) as (service, _):
        for i in range(3):  # no await suspends in between: one round takes all three
            event = decode(ev("call_queued", T0 - 30, call_id=f"c{i}", queue="q"))
            await service.submit(Batch([event], "test", ack=ack))
        for _ in range(100):
            if len(acks) == 3:
                break
            await asyncio.sleep(0.01)
    assert (store.appends, store.batches, store.events) == (1, 3, 3)
    assert acks == [1, 1, 1]  # every ack came after the append
    assert store.closed


class _Faulty(FloorProcessor):
    """A processor with a bug: applying a call_queued for queue "boom" raises."""

    def apply(self, event: Event) -> Refusal | None:
        if isinstance(event, CallQueued) and event.queue == "boom":
            raise ZeroDivisionError("a bug")
        return super().apply(event)


async def test_an_exception_in_a_round_rejects_that_event_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event that makes the processor raise is rejected (internal_error, logged once with
    the event); the events beside it are applied and the service keeps serving."""
    body = ndjson(
        ev("call_queued", T0 - 30, call_id="c1", queue="q"),
        ev("call_queued", T0 - 30, call_id="c2", queue="boom"),
        ev("call_queued", T0 - 30, call_id="c3", queue="q"),
    )
    proc = _Faulty(config(), live=True)
    with caplog.at_level(logging.ERROR):
        async with running(processor=proc) as (service, base), aiohttp.ClientSession() as http:
            status, reply = await post(http, base, body)
            again, _ = await post(
                http, base, ndjson(ev("call_queued", T0 - 20, call_id="c4", queue="q"))
            )
            await service.next_tick()
            _, queue = await get(http, base, "/api/v1/queues/q")
    assert (status, again) == (202, 202)
    assert [(r["index"], r["reason"]) for r in reply["rejected"]] == [(1, "internal_error")]
    assert queue["live"]["waiting"] == 3
    assert service.stats.ingest_errors_total == 1
    assert service.view.stats().rejected_by_reason == {"internal_error": 1}
    logged = [r for r in caplog.records if "ingest_error" in r.getMessage()]
    assert len(logged) == 1 and '"c2"' in logged[0].getMessage()


async def test_a_held_event_that_raises_is_rejected_when_released() -> None:
    """A held event that breaks the processor at release is counted and the tick goes on."""
    clock = FakeClock()
    proc = _Faulty(config(), live=True)
    body = ndjson(
        ev("call_queued", T0 + 5, call_id="c1", queue="boom"),
        ev("call_queued", T0 + 5, call_id="c2", queue="q"),
    )
    async with (
        running(processor=proc, clock=clock) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        await post(http, base, body)
        clock.t = T0 + 10
        await service.next_tick()
        assert service.view.queue_names() == ["q"]
    assert service.stats.ingest_errors_total == 1


async def test_stopping_ends_open_change_streams_promptly() -> None:
    """Cancelling the service ends open /api/v1/changes streams instead of waiting on them."""
    service = FloorService(config(), clock=FakeClock(), host="127.0.0.1", port=0)
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
        assert await asyncio.wait_for(stream.content.read(), 3) == b": connected\n\n"


async def test_in_process_sources_wait_for_room() -> None:
    """An in-process source's batch waits in submit() while the backlog is full."""
    service = FloorService(config({"limits": {"max_pending_events": 2}}), clock=FakeClock())
    events = [decode(ev("call_queued", T0 + 5, call_id=f"c{i}", queue="q")) for i in range(2)]
    await service.submit(Batch(events, "sim"))
    waiting = asyncio.create_task(service.submit(Batch(events[:1], "sim")))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    service.backlog.release(2)
    await asyncio.wait_for(waiting, 1)
    assert service.backlog.pending == 1


async def test_each_tick_drains_the_change_set_without_subscribers() -> None:
    """With nobody listening, every tick still drains the change set (no unbounded growth)."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        await post(http, base, ndjson(ev("agent_state", T0 - 5, agent="a", state="wrap_up")))
        await service.next_tick()
        assert len(service.bus) == 0
        assert not service.proc.drain_changes()

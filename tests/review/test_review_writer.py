"""Review: the writer under a failing or slow store, and the backlog's accounting when
the processor raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

import aiohttp
import pytest
from helpers import T0, config, ev
from live import FakeClock, get, ndjson, post, running
from waiting import until

from callfloor.events import CallQueued, Event
from callfloor.ingest.source import Batch
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.limits import Refusal
from callfloor.store.memory import MemoryStore


class OutageStore(MemoryStore):
    """The memory store, failing while ``down`` is set, or holding every append until
    ``held`` is set (``appending`` counts the appends that started)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.held: asyncio.Event | None = None
        self.appending = 0

    async def append(
        self,
        batches: Sequence[Batch],
        at: float,
        *,
        clock_of: Callable[[str], float] | None = None,
    ) -> Mapping[str, str]:
        self.appending += 1
        if self.held is not None:
            await self.held.wait()
        if self.down:
            raise ConnectionError("store unreachable")
        return await super().append(batches, at, clock_of=clock_of)


async def test_the_clock_goes_on_while_the_store_fails(caplog: pytest.LogCaptureFixture) -> None:
    """While appends fail, ticks go on (a waiting caller's wait grows), /readyz says degraded
    and nothing is acknowledged; once the store is back the body is taken and applied."""
    clock = FakeClock()
    store = OutageStore()
    caplog.set_level(logging.CRITICAL)  # the retries are logged at ERROR by design
    async with (
        running(clock=clock, store=store) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        await post(http, base, ndjson(ev("call_queued", T0 - 30, call_id="c1", queue="q")))
        await service.next_tick()
        store.down = True
        pending = asyncio.create_task(
            post(http, base, ndjson(ev("call_queued", T0 - 20, call_id="c2", queue="q")))
        )
        await until(lambda: service.writer.store_failing)  # the append has failed
        clock.t = T0 + 60
        await asyncio.wait_for(service.next_tick(), 5)
        _, queue = await get(http, base, "/api/v1/queues/q")
        ready, readiness = await get(http, base, "/readyz")
        assert not pending.done()  # not acknowledged while the store fails
        assert queue["as_of"] == T0 + 59
        assert queue["live"]["longest_wait_s"] == 89  # grew with the clock alone
        assert (ready, readiness["status"], readiness["store"]) == (503, "degraded", "failing")
        store.down = False
        status, reply = await asyncio.wait_for(pending, 5)
        await service.next_tick()
        _, queue = await get(http, base, "/api/v1/queues/q")
        ready, _ = await get(http, base, "/readyz")
    assert (status, reply["accepted"]) == (202, 1)
    assert queue["live"]["waiting"] == 2
    assert ready == 200


async def test_a_slow_store_does_not_stop_the_clock() -> None:
    """An append that does not finish does not hold the ticks back: the document keeps up."""
    clock = FakeClock()
    store = OutageStore()
    async with (
        running(clock=clock, store=store) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        store.held, store.appending = asyncio.Event(), 0
        pending = asyncio.create_task(
            post(http, base, ndjson(ev("call_queued", T0 - 20, call_id="c1", queue="q")))
        )
        await until(lambda: store.appending > 0)  # the append is under way, and held
        clock.t = T0 + 30
        await asyncio.wait_for(service.next_tick(), 10)
        as_of = service.view.as_of
        assert not pending.done(), "the append was not held"
        store.held.set()
        status, _ = await asyncio.wait_for(pending, 10)
    assert as_of == T0 + 29
    assert status == 202


class _FaultyCheck(FloorProcessor):
    """A processor with a bug: checking a call_queued for queue "boom" raises."""

    def check(self, event: Event) -> Refusal | None:
        if isinstance(event, CallQueued) and event.queue == "boom":
            raise ZeroDivisionError("a bug")
        return super().check(event)


async def test_an_event_that_breaks_the_admission_check_frees_its_room() -> None:
    """A held (future) event whose admission check raises is rejected as internal_error and
    gives its backlog room back: once the rest is released nothing is left pending."""
    clock = FakeClock()
    proc = _FaultyCheck(config(), live=True)
    body = ndjson(
        ev("call_queued", T0 + 5, call_id="c1", queue="boom"),
        ev("call_queued", T0 + 5, call_id="c2", queue="q"),
    )
    async with (
        running(processor=proc, clock=clock) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        status, reply = await post(http, base, body)
        clock.t = T0 + 10
        await service.next_tick()
        _, readiness = await get(http, base, "/readyz")
    assert (status, [r["reason"] for r in reply["rejected"]]) == (202, ["internal_error"])
    assert (readiness["pending_events"], readiness["held_events"]) == (0, 0)


async def test_new_bodies_get_a_503_at_once_while_the_store_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once an append has failed, a new body is refused at once (503 naming the store and
    Retry-After) instead of waiting for an acknowledgement that cannot come; the body
    already taken is applied when the store is back."""
    clock = FakeClock()
    store = OutageStore()
    caplog.set_level(logging.CRITICAL)
    async with (
        running(clock=clock, store=store) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        store.down = True
        first = asyncio.create_task(
            post(http, base, ndjson(ev("call_queued", T0 - 20, call_id="c1", queue="q")))
        )
        while not service.writer.store_failing:
            await asyncio.sleep(0.01)
        async with http.post(
            f"{base}/api/v1/events",
            data=ndjson(ev("call_queued", T0 - 10, call_id="c2", queue="q")),
            headers={"Content-Type": "application/x-ndjson"},
        ) as resp:
            status, answer, retry = resp.status, await resp.json(), resp.headers["Retry-After"]
        assert (status, answer["store"], retry) == (503, "failing", "2")
        assert "store unreachable" in answer["error"]
        assert not first.done()
        store.down = False
        status, reply = await asyncio.wait_for(first, 5)
        assert (status, reply["accepted"]) == (202, 1)
        assert service.writer.store_append_errors_total >= 1

"""Held events are applied as soon as the watermark passes them, not at the next tick."""

from __future__ import annotations

import asyncio

import aiohttp
from helpers import T0, ev
from live import FakeClock, ndjson, post, running


async def test_a_held_event_is_applied_when_the_watermark_passes_it_between_ticks() -> None:
    """With ticks a minute apart, an event held ahead of the watermark is applied (and
    the clock moved to the watermark) once the watermark passes its ts; the change set
    still waits for the tick."""
    clock = FakeClock(T0)
    async with (
        running(clock=clock, tick_s=60.0) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        ticks = service.writer._ticks_done
        status, _ = await post(
            http, base, ndjson(ev("call_queued", T0 - 0.5, call_id="c1", queue="q"))
        )
        assert status == 202
        assert service.held_events == 1  # the watermark (T0 - 1 s) is behind its ts
        clock.t = T0 + 1.0  # the watermark passes it; the writer looks again within 0.5 s
        for _ in range(300):
            if service.held_events == 0:
                break
            await asyncio.sleep(0.01)
        assert service.held_events == 0
        assert service.proc.counters["events"] == 1
        assert service.proc.clock == T0  # advanced to the watermark
        assert service.writer._ticks_done == ticks  # no tick was needed


async def test_a_far_future_event_does_not_wake_the_writer_in_a_loop() -> None:
    """An event held for minutes is not looked at again before it can be due."""
    clock = FakeClock(T0)
    async with (
        running(clock=clock, tick_s=60.0) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        await post(http, base, ndjson(ev("call_queued", T0 + 120, call_id="c1", queue="q")))
        await asyncio.sleep(0.05)
        assert service.held_events == 1
        assert service.writer._next_release - asyncio.get_running_loop().time() > 100

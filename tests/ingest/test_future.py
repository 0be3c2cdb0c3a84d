"""``[limits] max_future_events``: events ahead of the server clock, bounded per source.

1,000,000 events stamped now + 290 s once filled the backlog (max_pending_events) and
locked every producer out for five minutes: valid, held until the watermark passes them,
and counted with everything else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from fixtures.mosquitto import Mosquitto, publish, subscribed
from helpers import T0, config, decode, ev
from live import FakeClock, ndjson, post, running
from waiting import until

from callfloor.ingest.future import FutureGate
from callfloor.service import FloorService
from callfloor.service.sources import configured_sources


def _events(n: int, ts: float, prefix: str = "f") -> list[dict[str, Any]]:
    return [
        ev("call_queued", ts, call_id=f"{prefix}{i}", queue="q", id=f"{prefix}{i}")
        for i in range(n)
    ]


def test_each_source_has_its_own_allowance() -> None:
    """Beyond the allowance a source's events ahead of the clock are refused, by position;
    another source, and events not ahead of the clock, are not touched."""
    clock = FakeClock(T0)
    gate = FutureGate(3, clock)
    ahead = [decode(e) for e in _events(5, T0 + 290)]
    assert gate.take("mqtt", ahead) == [3, 4]
    assert gate.take("mqtt", [decode(e) for e in _events(2, T0)]) == []
    assert gate.take("http", ahead[:3]) == []
    assert (gate.ahead("mqtt"), gate.ahead("http")) == (3, 3)


def test_the_allowance_frees_as_the_clock_passes_the_events() -> None:
    """An event stops counting once the wall clock reaches its ts."""
    clock = FakeClock(T0)
    gate = FutureGate(2, clock)
    gate.take("s", [decode(e) for e in _events(1, T0 + 10) + _events(1, T0 + 200, "g")])
    assert gate.take("s", [decode(e) for e in _events(1, T0 + 100, "h")]) == [0]
    clock.t = T0 + 10
    assert gate.take("s", [decode(e) for e in _events(1, T0 + 100, "h")]) == []
    assert gate.ahead("s") == 2


def test_split_counts_nothing_until_commit() -> None:
    """split() says what fits; only commit() takes the room (a body refused for
    back-pressure must not use the allowance)."""
    gate = FutureGate(2, FakeClock(T0))
    events = [decode(e) for e in _events(3, T0 + 60)]
    refused, ahead = gate.split("s", events)
    assert (refused, len(ahead), gate.ahead("s")) == ([2], 2, 0)
    gate.commit("s", ahead)
    assert gate.ahead("s") == 2


async def test_a_flood_stamped_ahead_does_not_lock_other_events_out_over_http() -> None:
    """A body of 1,000 events stamped now + 290 s against a backlog of 1,000: the
    allowance (100) is taken, the rest refused (too_many_future_events, listed and
    counted), and the next body, stamped now, is accepted instead of getting a 503."""
    clock = FakeClock(T0)
    cfg = config({"limits": {"max_pending_events": 1000, "max_future_events": 100}})
    async with running(cfg, clock) as (service, base), aiohttp.ClientSession() as http:
        flood_status, flood = await post(http, base, ndjson(*_events(1000, T0 + 290)))
        now_status, now = await post(http, base, ndjson(*_events(10, T0 - 5, "n")))
        await until(lambda: service.proc.view.counters().events >= 10, 5.0)
        counters = service.proc.counters
    assert flood_status == 202
    assert (flood["accepted"], flood["rejected_total"]) == (100, 900)
    first = flood["rejected"][0]
    assert (first["index"], first["reason"], first["field"]) == (
        100,
        "too_many_future_events",
        "ts",
    )
    assert now_status == 202 and now["accepted"] == 10
    assert service.proc.rejected_by_reason.get("too_many_future_events") == 900
    assert counters["rejected"] == 900


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path) as running_broker:
        yield running_broker


async def test_an_mqtt_producer_with_a_fast_clock_is_dead_lettered_not_blocking(
    broker: Mosquitto,
) -> None:
    """MQTT messages of events 290 s ahead beyond the allowance are dead-lettered
    (too_many_future_events) and acknowledged; HTTP events stamped now are still taken,
    and so are MQTT events stamped now published after the flood."""
    now = time.time()
    source = {"kind": "mqtt", "url": broker.url, "client_id": "cf-future"}
    cfg = config(
        {"sources": [source], "limits": {"max_pending_events": 1000, "max_future_events": 100}}
    )
    service = FloorService(cfg, host="127.0.0.1", port=0, tick_s=0.02)
    task = asyncio.create_task(service.run(configured_sources(cfg, service)))
    try:
        await until(lambda: task.done() or service.stats.source_up.get("mqtt", False), 15.0)
        base = f"http://127.0.0.1:{service.bound_port}"
        flood = [msgspec.json.encode(_events(100, now + 290, f"m{k}-")) for k in range(20)]
        async with subscribed(broker, "callfloor/+/deadletter") as letters:
            await publish(broker, "callfloor/sh/events", flood)
            await publish(
                broker, "callfloor/sh/events", [msgspec.json.encode(_events(5, now - 30, "late"))]
            )
            async with aiohttp.ClientSession() as http:
                status, answer = await post(http, base, ndjson(*_events(5, time.time() - 30, "h")))
            await until(lambda: service.proc.view.counters().events >= 10, 20.0)
            letter = msgspec.json.decode((await asyncio.wait_for(letters.get(), 10)).payload)
        refused = service.stats.mqtt_deadletters_total.get(("mqtt", "too_many_future_events"))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert status == 202 and answer["accepted"] == 5
    assert letter["reason"] == "too_many_future_events" and letter["rejected_total"] == 100
    assert refused == 19
    assert service.proc.rejected_by_reason.get("too_many_future_events") == 1900

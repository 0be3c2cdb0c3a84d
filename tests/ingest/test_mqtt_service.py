"""The live service with an MQTT source on a real Mosquitto: metrics, dead letters, restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import msgspec
import pytest
from fixtures.mosquitto import Mosquitto, publish, subscribed
from fixtures.tcp_proxy import tcp_proxy
from helpers import config, ev
from live import get, ndjson, post
from serving import ServeProcess, get_json
from waiting import until

from callfloor.service import FloorService
from callfloor.service.sources import configured_sources

TOPIC = "callfloor/sh/events"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path) as running:
        yield running


def _cfg(broker: Mosquitto, client_id: str = "cf-svc", **extra: Any) -> Any:
    source = {"kind": "mqtt", "url": broker.url, "client_id": client_id}
    return config({"sources": [source], **extra})


@asynccontextmanager
async def _serving(cfg: Any) -> AsyncIterator[tuple[FloorService, str]]:
    """The service with its configured sources on a free port, until the block ends."""
    service = FloorService(cfg, host="127.0.0.1", port=0, tick_s=0.02)
    sources = configured_sources(cfg, service)
    task = asyncio.create_task(service.run(sources))
    await until(lambda: task.done() or service.stats.source_up.get("mqtt", False), 15.0)
    if task.done():
        task.result()
    try:
        yield service, f"http://127.0.0.1:{service.bound_port}"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _event(i: int, site: str | None = None, queue: str = "q") -> dict[str, Any]:
    extra = {"site": site} if site else {}
    return ev("call_queued", time.time() - 60, call_id=f"c{i}", queue=queue, id=f"e{i}", **extra)


async def _counters(http: aiohttp.ClientSession, base: str) -> dict[str, int]:
    _, doc = await get(http, base, "/api/v1/snapshot")
    counters: dict[str, int] = doc["counters"]
    return counters


async def test_events_over_mqtt_and_http_reach_the_snapshot_and_metrics(
    broker: Mosquitto,
) -> None:
    """Events published on MQTT and posted over HTTP are applied side by side and counted."""
    async with _serving(_cfg(broker)) as (service, base), aiohttp.ClientSession() as http:
        await publish(broker, TOPIC, [msgspec.json.encode(_event(i)) for i in range(3)])
        status, _ = await post(http, base, ndjson(_event(3), _event(4)))
        await until(lambda: service.proc.view.counters().events >= 5, 15.0)
        _, doc = await get(http, base, "/api/v1/snapshot")
        async with http.get(base + "/metrics") as resp:
            metrics = await resp.text()
    assert status == 202
    assert doc["queues"]["q"]["live"]["waiting"] == 5
    assert 'callfloor_mqtt_messages_total{source="mqtt"} 3' in metrics
    assert 'callfloor_ingest_events_total{source="mqtt"} 3' in metrics
    assert 'callfloor_source_up{source="mqtt"} 1' in metrics


async def test_the_plus_of_the_topic_is_the_site_of_events_that_name_none(
    broker: Mosquitto,
) -> None:
    """An event on callfloor/bj/events without a site is on site bj; one naming sh stays sh."""
    async with _serving(_cfg(broker)) as (service, base), aiohttp.ClientSession() as http:
        await publish(
            broker,
            "callfloor/bj/events",
            [
                msgspec.json.encode(_event(1, queue="q1")),
                msgspec.json.encode(_event(2, site="sh", queue="q2")),
            ],
        )
        await until(lambda: service.proc.view.counters().events >= 2, 15.0)
        _, doc = await get(http, base, "/api/v1/snapshot")
    assert (doc["queues"]["q1"]["site"], doc["queues"]["q2"]["site"]) == ("bj", "sh")


async def test_malformed_payloads_are_dead_lettered_and_ingestion_goes_on(
    broker: Mosquitto,
) -> None:
    """Garbage, invalid items and refused events go to the dead-letter topic with their reason;
    the good events before and after them are applied."""
    old = ev("call_queued", time.time() - 3 * 86400, call_id="old", queue="q", id="old")
    payloads = [
        msgspec.json.encode(_event(1)),
        b"\x00garbage{",
        msgspec.json.encode([_event(2), {"type": "call_queued"}]),
        msgspec.json.encode(old),
        msgspec.json.encode(_event(3)),
    ]
    async with (
        subscribed(broker, "callfloor/+/deadletter") as letters,
        _serving(_cfg(broker)) as (service, base),
        aiohttp.ClientSession() as http,
    ):
        await publish(broker, TOPIC, payloads)
        await until(lambda: service.proc.view.counters().events >= 3, 15.0)
        got = [msgspec.json.decode((await asyncio.wait_for(letters.get(), 5)).payload)]
        got += [msgspec.json.decode((await asyncio.wait_for(letters.get(), 5)).payload)]
        got += [msgspec.json.decode((await asyncio.wait_for(letters.get(), 5)).payload)]
        counters = await _counters(http, base)
        async with http.get(base + "/metrics") as resp:
            metrics = await resp.text()
    by_reason = {letter["reason"]: letter for letter in got}
    assert set(by_reason) == {"invalid_json", "missing_field", "ts_too_old"}
    assert by_reason["invalid_json"]["payload"] == "\x00garbage{"
    assert by_reason["missing_field"]["accepted"] == 1
    assert msgspec.json.decode(by_reason["ts_too_old"]["rejected"][0]["item"])["id"] == "old"
    assert counters["events"] == 3 and counters["rejected"] == 3
    assert 'callfloor_mqtt_deadletters_total{reason="invalid_json",source="mqtt"} 1' in metrics


async def _publish_resilient(broker: Mosquitto, payloads: list[bytes]) -> int:
    """Publish every payload at QoS 1, reconnecting (and resending) while the broker is away."""
    sent = 0
    while sent < len(payloads):
        client = aiomqtt.Client(broker.host, broker.port, timeout=2)
        try:
            async with client:
                while sent < len(payloads):
                    await client.publish(TOPIC, payloads[sent], qos=1, timeout=2)
                    sent += 1
        except aiomqtt.MqttError:
            # aiomqtt keeps the lost connection's error in a future nobody reads; read it,
            # or asyncio reports it as never retrieved whenever the client is collected.
            lost = client._disconnected
            if lost.done() and not lost.cancelled():
                lost.exception()
            await asyncio.sleep(0.05)
    return sent


async def test_a_broker_restart_during_a_run_loses_nothing(broker: Mosquitto) -> None:
    """The broker stops and starts (same port and persistence) mid-run: every event is
    applied once, and the source reconnected (counted)."""
    n = 1500
    payloads = [msgspec.json.encode(_event(i)) for i in range(n)]
    async with _serving(_cfg(broker)) as (service, base), aiohttp.ClientSession() as http:
        publishing = asyncio.create_task(_publish_resilient(broker, payloads))
        # Generous: a loaded machine applies the first third slowly, and the publisher
        # waits for each PUBACK, so it is still mid-run.
        await until(lambda: service.proc.view.counters().events >= n // 3, 30.0)
        assert not publishing.done()  # the broker goes away in the middle of the run
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(broker.start)
        assert await asyncio.wait_for(publishing, 60) == n
        await until(lambda: service.proc.view.counters().events >= n, timeout=30)
        await asyncio.sleep(0.3)  # redeliveries still on the way are duplicates, not events
        _, doc = await get(http, base, "/api/v1/snapshot")
    assert doc["counters"]["events"] == n
    assert doc["queues"]["q"]["live"]["waiting"] == n
    assert service.stats.source_restarts_total["mqtt"] >= 1


def _toml(broker: Mosquitto, client_id: str) -> str:
    return (
        "[[sources]]\n"
        'kind = "mqtt"\n'
        f'url = "{broker.url}"\n'
        f'client_id = "{client_id}"\n'
        'topics = ["callfloor/+/events"]\n'
    )


def test_serve_takes_what_was_published_while_it_was_down(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """`callfloor serve` with an MQTT source: events published between two runs (the
    persistent session keeps them) are applied by the second run."""
    cfg = tmp_path / "callfloor.toml"
    cfg.write_text(_toml(broker, "cf-serve"))
    first = ServeProcess(cfg)
    first.wait_ready()
    asyncio.run(publish(broker, TOPIC, [msgspec.json.encode(_event(0))]))
    first.snapshot_after(1)
    first.stop()
    asyncio.run(publish(broker, TOPIC, [msgspec.json.encode(_event(i)) for i in range(1, 4)]))
    second = ServeProcess(cfg)
    try:
        second.wait_ready()
        doc = second.snapshot_after(3)
        ready = get_json(f"{second.base}/readyz")
    finally:
        second.stop()
    assert doc["counters"]["events"] == 3
    assert ready["sources"]["mqtt"]["state"] == "up"


def test_serve_refuses_a_source_it_cannot_build(tmp_path: Path) -> None:
    """A source its kind's factory refuses (a topic filter MQTT does not allow) stops
    `callfloor serve` with one line naming the source and the problem."""
    cfg = tmp_path / "callfloor.toml"
    cfg.write_text('[[sources]]\nkind = "mqtt"\ntopics = ["callfloor/#/events"]\n')
    proc = ServeProcess(cfg)
    code = proc.proc.wait(15)
    out = proc.output()
    assert code == 2
    assert "[[sources]] 'mqtt'" in out and "not a valid MQTT filter" in out
    assert out.count("\n") == 1


async def test_readyz_says_starting_until_the_mqtt_source_has_subscribed(
    broker: Mosquitto,
) -> None:
    """/readyz answers 503 "starting" until the source's first subscription, so a message
    published as soon as it says ready reaches callfloor (a broker drops what a new
    session is sent before it subscribes)."""
    async with tcp_proxy(broker.port, connect_delay_s=0.5) as proxy:
        url = f"mqtt://127.0.0.1:{proxy.port}"
        source = {"kind": "mqtt", "url": url, "client_id": "cf-first-start"}
        cfg = config({"sources": [source]})
        service = FloorService(cfg, host="127.0.0.1", port=0, tick_s=0.02)
        task = asyncio.create_task(service.run(configured_sources(cfg, service)))
        async with aiohttp.ClientSession() as http:
            await until(lambda: service.started.is_set() or task.done(), 10.0)
            base = f"http://127.0.0.1:{service.bound_port}"
            first = await get(http, base, "/readyz")
            status, ready = first
            while status != 200:
                await asyncio.sleep(0.005)
                status, ready = await get(http, base, "/readyz")
            await publish(broker, TOPIC, [msgspec.json.encode(_event(0))])
            await until(lambda: service.proc.view.counters().events >= 1, 10.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    code, early = first
    assert (code, early["status"], early["sources"]["mqtt"]["state"]) == (
        503,
        "starting",
        "starting",
    )
    assert ready["sources"]["mqtt"]["state"] == "up"

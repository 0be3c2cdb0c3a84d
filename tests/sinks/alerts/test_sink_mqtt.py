"""The MQTT sink against a real Mosquitto: retained alert state, cleared on resolve."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import pytest
from fixtures.mosquitto import Mosquitto, add_password, subscribed
from sink_util import ended, notification

from callfloor.alerts.notification import Notification
from callfloor.sinks.alerts.base import DeliveryError
from callfloor.sinks.alerts.mqtt import MqttSink, alert_topic
from callfloor.sinks.alerts.registry import create_sinks, parse_sinks

TOPIC = "callfloor/sh/alerts/fp-sales-sl"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path) as running:
        yield running


def sink_for(broker: Mosquitto, **table: Any) -> MqttSink:
    [sink] = create_sinks(parse_sinks({"mqtt": {"kind": "mqtt", "url": broker.url, **table}}))
    assert isinstance(sink, MqttSink)
    return sink


async def retained(broker: Mosquitto, topic: str, wait_s: float = 0.5) -> list[bytes]:
    """What a new subscriber receives on ``topic`` within ``wait_s`` (retained messages)."""
    got: list[bytes] = []
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic, qos=1)
        try:
            async with asyncio.timeout(wait_s):
                async for message in client.messages:
                    assert message.retain
                    got.append(bytes(message.payload))  # type: ignore[arg-type]
        except TimeoutError:
            pass
    return got


async def test_a_firing_alert_is_retained_on_its_topic(broker: Mosquitto) -> None:
    """callfloor/<site>/alerts/<fingerprint> holds the notification, retained."""
    sink = sink_for(broker)
    n = notification()
    try:
        await sink.deliver(n)
    finally:
        await sink.close()
    [payload] = await retained(broker, TOPIC)
    assert msgspec.json.decode(payload, type=Notification) == n
    assert await retained(broker, "callfloor/+/alerts/#") == [payload]


async def test_a_resolve_is_published_then_the_topic_cleared(broker: Mosquitto) -> None:
    """Listeners see the resolve, then an empty retained message; a new subscriber sees none."""
    sink = sink_for(broker)
    n = notification()
    try:
        await sink.deliver(n)
        async with subscribed(broker, TOPIC) as live:
            first = await asyncio.wait_for(live.get(), 5)  # the retained firing state
            assert msgspec.json.decode(first.payload, type=Notification) == n  # type: ignore[arg-type]
            resolve = ended(n)
            await sink.deliver(resolve)
            got = await asyncio.wait_for(live.get(), 5)
            cleared = await asyncio.wait_for(live.get(), 5)
    finally:
        await sink.close()
    assert msgspec.json.decode(got.payload, type=Notification) == resolve  # type: ignore[arg-type]
    assert cleared.payload == b""
    assert await retained(broker, TOPIC) == []


async def test_the_latest_state_replaces_the_retained_one(broker: Mosquitto) -> None:
    """A repeat or escalation replaces the retained message (one per alert)."""
    sink = sink_for(broker, topic_prefix="acme/floor")
    try:
        await sink.deliver(notification())
        later = notification(severity="critical")
        await sink.deliver(later)
    finally:
        await sink.close()
    [payload] = await retained(broker, "acme/floor/sh/alerts/fp-sales-sl")
    assert msgspec.json.decode(payload, type=Notification) == later


async def test_a_broker_that_went_away_is_retried_and_reconnected(broker: Mosquitto) -> None:
    """A delivery while the broker is down is retryable; the next one reconnects."""
    sink = sink_for(broker)
    try:
        await sink.deliver(notification(fingerprint="before"))
        broker.stop()
        with pytest.raises(DeliveryError) as failed:
            await sink.deliver(notification(fingerprint="down"))
        assert failed.value.retryable
        broker.start()
        await sink.deliver(notification(fingerprint="after"))
    finally:
        await sink.close()
    assert len(await retained(broker, "callfloor/sh/alerts/after")) == 1


async def test_credentials_are_used(tmp_path: Path) -> None:
    """username and password reach a broker that requires them."""
    plain = Mosquitto(tmp_path / "a")
    path = add_password(plain, "alerts", "pw")
    with Mosquitto(
        tmp_path, extra=f"allow_anonymous false\npassword_file {path}\n", port=plain.port
    ) as secured:
        sink = sink_for(secured, username="alerts", password="pw")
        try:
            await sink.deliver(notification())
        finally:
            await sink.close()
        wrong = sink_for(secured, username="alerts", password="no")
        try:
            with pytest.raises(DeliveryError):
                await wrong.deliver(notification())
        finally:
            await wrong.close()


def test_names_are_made_single_topic_levels() -> None:
    """A site or fingerprint with /, + or # cannot add levels or wildcards."""
    assert alert_topic("callfloor", "a/b", "x+#y") == "callfloor/a_b/alerts/x__y"
    assert alert_topic("callfloor", "", "f") == "callfloor/_/alerts/f"

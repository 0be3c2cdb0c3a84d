"""Review of issue 6 (durable ingest): the MQTT source against a real Mosquitto, with
topic filters wider than the default. Each xfail is a confirmed bug."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.mosquitto import Mosquitto, publish

from callfloor.config import LimitsConfig, SourceConfig
from callfloor.ingest.mqtt import MqttSource
from callfloor.ingest.source import Receipt


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path) as running:
        yield running


@pytest.mark.xfail(
    strict=True,
    reason="mqtt.py _take/_publish_letters: a source whose filter also matches "
    "callfloor/<site>/deadletter (callfloor/+/#) takes its own dead letters back in, "
    "finds no event in them and dead-letters them again, for ever",
)
async def test_a_dead_letter_is_not_taken_back_in_by_a_wide_filter(broker: Mosquitto) -> None:
    """One undecodable message gives one dead letter, even when the source's topic
    filter also matches the dead-letter topic."""
    config = SourceConfig(
        kind="mqtt",
        name="mqtt",
        url=broker.url,
        topics=("callfloor/+/#",),
        client_id="cf-review-wide",
    )
    source = MqttSource(config, LimitsConfig(), linger_s=0.005)
    async with source:
        await publish(broker, "callfloor/sh/events", [b"not json"])
        batches = aiter(source)
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.5
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(until):
                while True:
                    batch = await anext(batches)
                    if batch.ack is not None:
                        batch.ack(Receipt())
    letters = sum(source.stats.mqtt_deadletters_total.values())
    assert letters == 1

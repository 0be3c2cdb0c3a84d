"""Review of issue 6 (durable ingest): the MQTT source's topic filters. Each test here
was a confirmed bug, fixed."""

from __future__ import annotations

import pytest

from callfloor.config import LimitsConfig, SourceConfig
from callfloor.ingest.mqtt import MqttSource, MqttSourceError


def test_a_filter_that_would_take_dead_letters_back_in_is_refused() -> None:
    """A source whose filter also matches callfloor/<site>/deadletter (callfloor/+/#) is
    refused when it is built: it would take its own dead letters back in, find no event
    in them and dead-letter them again, for ever (found by the review)."""
    config = SourceConfig(
        kind="mqtt",
        name="mqtt",
        url="mqtt://127.0.0.1:1883",
        topics=("callfloor/+/#",),
        client_id="cf-review-wide",
    )
    with pytest.raises(MqttSourceError, match="dead-letter"):
        MqttSource(config, LimitsConfig(), linger_s=0.005)

"""A poison MQTT message on a real Mosquitto: dead-lettered once, bounded, acknowledged.

One oversized message once stopped MQTT ingest for good: its dead letter (the payload
JSON-escaped, about six times its size) was refused by the client, the source
restarted, and the broker sent the message again, for ever.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import msgspec
from fixtures.mosquitto import Mosquitto, publish, subscribed
from helpers import config, ev
from live import get
from waiting import until

from callfloor.service import FloorService
from callfloor.service.sources import configured_sources

TOPIC = "callfloor/sh/events"
POISON_BYTES = 48 * 1024 * 1024
LETTER_BOUND = 64 * 1024  # a dead letter with the default dead_letter_max stays far below


def _cfg(broker: Mosquitto, client_id: str, **extra: Any) -> Any:
    source = {"kind": "mqtt", "url": broker.url, "client_id": client_id}
    return config({"sources": [source], **extra})


@asynccontextmanager
async def _serving(cfg: Any) -> AsyncIterator[tuple[FloorService, str]]:
    """The service with its configured sources on a free port, until the block ends."""
    service = FloorService(cfg, host="127.0.0.1", port=0, tick_s=0.02)
    task = asyncio.create_task(service.run(configured_sources(cfg, service)))
    await until(lambda: task.done() or service.stats.source_up.get("mqtt", False), 15.0)
    if task.done():
        task.result()
    try:
        yield service, f"http://127.0.0.1:{service.bound_port}"
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def _valid(i: int) -> bytes:
    return msgspec.json.encode(
        ev("call_queued", time.time() - 30, call_id=f"c{i}", queue="q", id=f"e{i}")
    )


async def _letter(letters: asyncio.Queue[aiomqtt.Message]) -> tuple[int, dict[str, Any]]:
    message = await asyncio.wait_for(letters.get(), 30)
    raw = bytes(message.payload)  # type: ignore[arg-type]
    return len(raw), msgspec.json.decode(raw)


async def test_a_48_mb_message_is_dead_lettered_once_and_the_next_one_is_applied(
    tmp_path: Path,
) -> None:
    """A 48 MB message of 0x01 bytes through a broker that lets it pass, then a valid one:
    the valid one is applied, the poison is dead-lettered once (bounded: a prefix, its
    size and SHA-256), acknowledged (a new session of the same client gets nothing again)
    and counted, and /readyz is ready."""
    poison = b"\x01" * POISON_BYTES
    # A broker without the shipped message_size_limit (an older deployment, another broker).
    with Mosquitto(tmp_path, extra="message_size_limit 0\n") as broker:
        async with subscribed(broker, "callfloor/+/deadletter") as letters:
            async with _serving(_cfg(broker, "cf-poison")) as (service, base):
                await publish(broker, TOPIC, [poison, _valid(1)])
                await until(lambda: service.proc.view.counters().events >= 1, 60.0)
                size, letter = await _letter(letters)
                async with aiohttp.ClientSession() as http:
                    ready = await get(http, base, "/readyz")
                    async with http.get(base + "/metrics") as resp:
                        metrics = await resp.text()
                restarts = service.stats.source_restarts_total.get("mqtt", 0)
            # The same client again: a message left unacknowledged would come again now,
            # before the marker published after it.
            async with _serving(_cfg(broker, "cf-poison")) as (again, _):
                await publish(broker, TOPIC, [_valid(2)])
                await until(lambda: again.proc.view.counters().events >= 1, 30.0)
                delivered_again = again.stats.mqtt_messages_total["mqtt"]
            more_letters = letters.qsize()
    assert ready[0] == 200 and ready[1]["status"] == "ready"
    assert restarts == 0
    assert size < LETTER_BOUND
    assert letter["reason"] == "message_too_large"
    assert letter["payload_size"] == POISON_BYTES
    assert letter["payload_sha256"] == hashlib.sha256(poison).hexdigest()
    kept = letter["payload"].encode() if "payload" in letter else b""
    kept = kept or base64.b64decode(letter.get("payload_base64", ""))
    assert 0 < len(kept) <= 4096 and poison.startswith(kept)
    assert letter["payload_truncated"] is True
    assert 'callfloor_mqtt_deadletters_total{reason="message_too_large",source="mqtt"} 1' in (
        metrics
    )
    assert delivered_again == 1
    assert more_letters == 0


async def test_the_shipped_broker_config_refuses_a_message_beyond_max_body(
    tmp_path: Path,
) -> None:
    """deploy/mosquitto.conf caps a message at [limits] max_body (16 MB): the broker drops
    a bigger one before callfloor reads it, and the next message is applied."""
    with Mosquitto(tmp_path) as broker:
        async with _serving(_cfg(broker, "cf-capped")) as (service, _):
            await publish(broker, TOPIC, [b"\x01" * (16 * 1024 * 1024 + 1), _valid(1)])
            await until(lambda: service.proc.view.counters().events >= 1, 30.0)
            taken = service.stats.mqtt_messages_total["mqtt"]
            # One exactly at the limit passes the broker (callfloor takes it: a dead letter).
            await publish(broker, TOPIC, [b"\x01" * (16 * 1024 * 1024)])
            await until(lambda: service.stats.mqtt_messages_total["mqtt"] >= 2, 30.0)
    assert taken == 1

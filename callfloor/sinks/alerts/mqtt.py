"""MQTT sink: each alert's current state as a retained message on its own topic.

``<topic_prefix>/<site>/alerts/<fingerprint>`` (``callfloor/<site>/alerts/<fp>`` by
default) holds the alert's latest notification as JSON, retained, so a wallboard or a
PLC that subscribes to ``callfloor/+/alerts/#`` gets every firing alert at once. When
the alert resolves (or is withdrawn) the resolving notification is published (not
retained, for those listening), then an empty retained message, which clears the
topic: a new subscriber sees no alert there.

A site or fingerprint holding ``/``, ``+``, ``#`` or NUL has those replaced by ``_`` in
the topic (they would change its levels or be refused). One connection, opened at the
first delivery and again after any failure; publishes at the configured QoS (1 by
default: each waits for the broker's PUBACK).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiomqtt
import msgspec

from callfloor.alerts.notification import Notification, Transition
from callfloor.config import MQTT_PROTOCOLS
from callfloor.ingest.mqtt import MqttSourceError, parse_url
from callfloor.sinks.alerts.base import AlertSink, DeliveryError, SinkConfig
from callfloor.sinks.alerts.settings import Ctx

__all__ = ["KEYS", "MqttConfig", "MqttSink", "alert_topic", "parse"]

KEYS: Final[tuple[str, ...]] = (
    "url",
    "topic_prefix",
    "qos",
    "username",
    "password",
    "client_id",
    "ca_file",
    "protocol",
)
_NOT_IN_A_LEVEL = re.compile(r"[/+#\x00]")
_ENDED: Final = (Transition.RESOLVED, Transition.WITHDRAWN)


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttConfig(SinkConfig):
    """``kind = "mqtt"``."""

    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "callfloor"
    qos: int = 1
    username: str | None = None
    password: str | None = None
    client_id: str | None = None  # None: a random one (this client only publishes)
    ca_file: str | None = None
    protocol: str = "5"


def parse(ctx: Ctx, table: Mapping[str, object], key: str, common: dict[str, Any]) -> SinkConfig:
    """A ``kind = "mqtt"`` table."""
    url = ctx.string(table.get("url", "mqtt://127.0.0.1:1883"), f"{key}.url")
    try:
        endpoint = parse_url(url)
    except MqttSourceError as exc:
        raise ctx.error(f"{key}.url", str(exc)) from None
    ca_file = ctx.string(table["ca_file"], f"{key}.ca_file") if "ca_file" in table else None
    if ca_file is not None:
        if not endpoint.tls:
            raise ctx.error(f"{key}.ca_file", "only an mqtts:// url uses a CA file")
        try:
            ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ctx.error(f"{key}.ca_file", f"cannot use {ca_file!r}: {exc}") from None
    prefix = ctx.string(table.get("topic_prefix", "callfloor"), f"{key}.topic_prefix")
    if "+" in prefix or "#" in prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ctx.error(
            f"{key}.topic_prefix",
            f"expected topic levels without wildcards or outer slashes, got {prefix!r}",
        )
    qos = ctx.integer(table.get("qos", 1), f"{key}.qos", 0)
    if qos > 2:
        raise ctx.error(f"{key}.qos", f"must be 0, 1 or 2, got {qos}")
    raw_protocol = table.get("protocol", "5")
    protocol = str(raw_protocol) if type(raw_protocol) is int else raw_protocol
    return MqttConfig(
        **common,
        url=url,
        topic_prefix=prefix,
        qos=qos,
        username=ctx.secret(table["username"], f"{key}.username") if "username" in table else None,
        password=ctx.secret(table["password"], f"{key}.password") if "password" in table else None,
        client_id=(
            ctx.string(table["client_id"], f"{key}.client_id") if "client_id" in table else None
        ),
        ca_file=ca_file,
        protocol=ctx.choice(protocol, f"{key}.protocol", MQTT_PROTOCOLS),
    )


def _level(name: str) -> str:
    return _NOT_IN_A_LEVEL.sub("_", name) or "_"


def alert_topic(prefix: str, site: str, fingerprint: str) -> str:
    """``<prefix>/<site>/alerts/<fingerprint>``, each name made one topic level."""
    return f"{prefix}/{_level(site)}/alerts/{_level(fingerprint)}"


class MqttSink(AlertSink):
    """Publishes alert states as retained messages (see the module docstring)."""

    def __init__(self, config: MqttConfig) -> None:
        super().__init__(config)
        self.mqtt = config
        self.endpoint = parse_url(config.url)
        self._tls: ssl.SSLContext | None = None
        if self.endpoint.tls:
            self._tls = ssl.create_default_context(cafile=config.ca_file)
        self._protocol = (
            aiomqtt.ProtocolVersion.V5 if config.protocol == "5" else aiomqtt.ProtocolVersion.V311
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self._encode = msgspec.json.Encoder().encode
        self._closing: set[asyncio.Task[None]] = set()

    async def _connected(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        client = aiomqtt.Client(
            self.endpoint.host,
            self.endpoint.port,
            username=self.mqtt.username,
            password=self.mqtt.password,
            identifier=self.mqtt.client_id,
            protocol=self._protocol,
            timeout=self.mqtt.timeout_s,
            tls_context=self._tls,
        )
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(client)
        self._stack, self._client = stack, client
        return client

    async def _close_stack(self, stack: contextlib.AsyncExitStack) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.mqtt.timeout_s):
                await stack.aclose()

    async def _disconnect(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await self._close_stack(stack)

    def _abandon(self) -> None:
        """Drop the connection without waiting (the delivery was cancelled half-way)."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            task = asyncio.create_task(self._close_stack(stack))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def deliver(self, notification: Notification) -> None:
        """Publish the alert's state (retained), or clear it once ended."""
        n = notification
        topic = alert_topic(self.mqtt.topic_prefix, n.site, n.fingerprint)
        payload = self._encode(n)
        qos = self.mqtt.qos
        try:
            client = await self._connected()
            if n.transition in _ENDED:
                await client.publish(topic, payload, qos=qos, retain=False)
                await client.publish(topic, b"", qos=qos, retain=True)  # clears the topic
            else:
                await client.publish(topic, payload, qos=qos, retain=True)
        except (aiomqtt.MqttError, OSError) as exc:
            await self._disconnect()
            raise DeliveryError(
                f"mqtt {self.name} ({self.endpoint.host}:{self.endpoint.port}): {exc}",
                retryable=True,
            ) from None
        except BaseException:
            self._abandon()  # cancelled (the outbox's timeout): the connection is in doubt
            raise

    async def close(self) -> None:
        """Disconnect."""
        await self._disconnect()
        for task in list(self._closing):
            with contextlib.suppress(Exception):
                await task


def create(config: SinkConfig) -> AlertSink:
    """The sink of a parsed ``kind = "mqtt"`` table."""
    assert isinstance(config, MqttConfig)
    return MqttSink(config)

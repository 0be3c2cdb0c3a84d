"""The MQTT source: QoS 1, a persistent session, and a PUBACK only once events are durable.

``MqttSource`` subscribes to the configured topics (default ``callfloor/+/events``)
at QoS 1 under the configured ``client_id`` with a persistent session (MQTT 3.1.1
``clean_session=0``; MQTT 5 ``clean_start=0`` with a session that never expires), so
the broker keeps the events that arrive while callfloor is down and sends again every
message that callfloor did not acknowledge.

Why paho-mqtt's client is reached through aiomqtt's: aiomqtt acknowledges a message
as soon as it is read. callfloor must send the PUBACK only after the service appended
the message's events to its store (SPEC §9), so the adapter turns on paho-mqtt's
manual acknowledgements (``manual_ack_set(True)``) on the paho client that aiomqtt
wraps and sends each PUBACK with ``ack(mid, qos)`` from the batch's ``ack``
callback. It also receives messages through its own ``on_message`` (a plain append
to a list, no task per message) instead of aiomqtt's iterator. aiomqtt keeps what it
does well: connecting in a worker thread, the socket callbacks on the event loop,
keep-alive, subscribe and publish with their acknowledgements awaited.

Messages are collected for up to ``linger_s`` (or ``batch_events`` events) into one
:class:`~callfloor.ingest.source.Batch` whose ``ack`` acknowledges every message in
it, in the order they arrived (MQTT 4.6). A message that holds no valid event is
dead-lettered as a whole on ``callfloor/<site>/deadletter`` (bounded: its first
``[limits] dead_letter_max`` bytes, size and SHA-256; QoS 1, the broker's PUBACK
awaited before the batch goes on, so it is acknowledged only once its dead letter is
with the broker); a message with some valid events gives them to the floor and
dead-letters the list of its invalid items; events the floor refuses (a limit) are
dead-lettered when the batch is acknowledged. A lost connection ends the iterator
with an error: the supervisor reconnects with capped, jittered backoff, and the
acknowledgements of batches from the old connection are not sent (counted): the
broker delivers those messages again, and the floor drops them as duplicates.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Protocol, Self, cast
from urllib.parse import urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from callfloor.config import LimitsConfig, SourceConfig
from callfloor.events import Event
from callfloor.ingest.counts import SourceCounts
from callfloor.ingest.future import FutureGate
from callfloor.ingest.mqtt_payload import (
    Message,
    SiteRule,
    dead_letter,
    deadletter_topic,
    decode_message,
    matches,
    refused_letter,
)
from callfloor.ingest.source import Batch, Receipt

log = logging.getLogger("callfloor.ingest")

LINGER_S: Final = 0.005
BATCH_EVENTS: Final = 5_000
RECEIVE_MAXIMUM: Final = 1_000  # MQTT 5: unacknowledged messages the broker may send us
SESSION_NEVER_EXPIRES: Final = 0xFFFFFFFF  # MQTT 5 session expiry: kept like 3.1.1's
_LIVENESS_S: Final = 1.0  # an idle source looks at its connection this often


class MqttSourceError(Exception):
    """A configured MQTT source that cannot work as written (a bad URL, a refused topic)."""


class MqttConnectionLost(Exception):
    """The broker connection closed; the supervisor connects again."""


class MqttStats(Protocol):
    """Where an MQTT source counts (the service's IngestStats has these mappings)."""

    mqtt_messages_total: dict[str, int]
    mqtt_redelivered_total: dict[str, int]
    mqtt_acks_lost_total: dict[str, int]
    mqtt_deadletters_total: dict[tuple[str, str], int]
    source_counts: SourceCounts  # the source kit's families, kind "mqtt"


@dataclass
class LocalStats:
    """Counters for a source run without a service (tests, benchmarks)."""

    mqtt_messages_total: dict[str, int] = field(default_factory=dict)
    mqtt_redelivered_total: dict[str, int] = field(default_factory=dict)
    mqtt_acks_lost_total: dict[str, int] = field(default_factory=dict)
    mqtt_deadletters_total: dict[tuple[str, str], int] = field(default_factory=dict)
    source_counts: SourceCounts = field(default_factory=SourceCounts)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the broker is and how to reach it, from ``url`` and the TLS settings."""

    host: str
    port: int
    tls: bool


def parse_url(url: str) -> Endpoint:
    """``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttSourceError(f"url {url!r}: expected mqtt://host:port or mqtts://host:port")
    if not parts.hostname:
        raise MqttSourceError(f"url {url!r}: no host")
    if parts.username or parts.password:
        raise MqttSourceError(f"url {url!r}: give username and password as their own keys")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MqttSourceError(f"url {url!r}: only mqtt[s]://host:port is understood")
    try:
        port = parts.port
    except ValueError as exc:
        raise MqttSourceError(f"url {url!r}: {exc}") from None
    tls = parts.scheme == "mqtts"
    return Endpoint(parts.hostname, port or (8883 if tls else 1883), tls)


def _check_topics(topics: tuple[str, ...]) -> None:
    for topic in topics:
        levels = topic.split("/")
        bad = any(("+" in lv and lv != "+") or ("#" in lv and lv != "#") for lv in levels)
        if not topic or bad or "#" in levels[:-1]:
            raise MqttSourceError(f"topic filter {topic!r} is not a valid MQTT filter")
        # callfloor publishes dead letters on callfloor/<site>/deadletter: a filter that
        # takes them back in would find no event in them and dead-letter them again,
        # for ever.
        site = levels[1] if len(levels) > 1 and levels[1] not in ("+", "#") else "site"
        if matches(topic, deadletter_topic(site)):
            raise MqttSourceError(
                f"topic filter {topic!r} also matches callfloor's dead-letter topics "
                f"(callfloor/<site>/deadletter), which would be taken back in: subscribe "
                f"to the events' topics only (e.g. callfloor/+/events)"
            )


@dataclass(slots=True)
class _Span:
    """The events of one message inside a batch, for dead-lettering refused ones."""

    start: int
    topic: str
    site: str | None
    received_at: float


class MqttSource:
    """An MQTT subscription as a source (see the module docstring)."""

    def __init__(
        self,
        config: SourceConfig,
        limits: LimitsConfig,
        *,
        stats: MqttStats | None = None,
        not_after: Callable[[], float] | None = None,
        future: FutureGate | None = None,
        clock: Callable[[], float] = time.time,
        linger_s: float = LINGER_S,
        batch_events: int = BATCH_EVENTS,
        receive_maximum: int = RECEIVE_MAXIMUM,
        keepalive_s: int = 30,
        timeout_s: float = 10.0,
    ) -> None:
        if config.kind != "mqtt":
            raise MqttSourceError(f"source {config.name!r} is of kind {config.kind!r}, not mqtt")
        self.config = config
        self.endpoint = parse_url(config.url or "mqtt://127.0.0.1:1883")
        self.topics = config.topics or ("callfloor/+/events",)
        _check_topics(self.topics)
        self.client_id = config.client_id or f"callfloor-{config.name}"
        self.protocol = (
            aiomqtt.ProtocolVersion.V311
            if config.protocol == "3.1.1"
            else aiomqtt.ProtocolVersion.V5
        )
        self._tls: ssl.SSLContext | None = None
        if self.endpoint.tls:
            try:
                self._tls = ssl.create_default_context(cafile=config.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise MqttSourceError(f"ca_file {config.ca_file!r}: {exc}") from None
        self.max_bytes = limits.max_body_bytes
        self.max_events = limits.max_request_events
        self.letter_keep = limits.dead_letter_max_bytes
        self._future = future
        self.stats: MqttStats = stats if stats is not None else LocalStats()
        self._not_after = not_after
        self._clock = clock
        self.linger_s = linger_s
        self.batch_events = batch_events
        self.receive_maximum = receive_maximum
        self.keepalive_s = keepalive_s
        self.timeout_s = timeout_s
        self._site = SiteRule(self.topics)
        self._inbox: deque[paho.MQTTMessage] = deque()
        self._wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._paho: paho.Client | None = None
        self._connection = 0  # which connection a batch came from (acks of old ones are void)
        name = config.name
        self._key = (name, "mqtt")
        self.stats.source_counts.register(self._key)
        for counts in (
            self.stats.mqtt_messages_total,
            self.stats.mqtt_redelivered_total,
            self.stats.mqtt_acks_lost_total,
        ):
            counts.setdefault(name, 0)

    @property
    def name(self) -> str:
        """The source name (metric label, key in ``/readyz``)."""
        return self.config.name

    # ------------------------------------------------------------------ connection

    def _make_client(self) -> aiomqtt.Client:
        v5 = self.protocol is aiomqtt.ProtocolVersion.V5
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
            properties.ReceiveMaximum = self.receive_maximum
        options: dict[str, Any] = (
            {"clean_start": False, "properties": properties} if v5 else {"clean_session": False}
        )
        return aiomqtt.Client(
            self.endpoint.host,
            self.endpoint.port,
            username=self.config.username,
            password=self.config.password,
            identifier=self.client_id,
            protocol=self.protocol,
            keepalive=self.keepalive_s,
            timeout=self.timeout_s,
            tls_context=self._tls,
            **options,
        )

    async def __aenter__(self) -> Self:
        """Connect with the persistent session and subscribe (QoS 1) to every topic."""
        self._inbox.clear()  # messages of a lost connection were not acknowledged: they come again
        client = self._make_client()
        inner: paho.Client = client._client  # see the module docstring
        inner.manual_ack_set(True)
        inner.on_message = self._on_message
        on_disconnect = inner.on_disconnect

        def disconnected(*args: Any) -> None:
            if on_disconnect is not None:
                on_disconnect(*args)
            self._wake.set()  # a waiting batch looks at the connection now

        inner.on_disconnect = disconnected
        await client.__aenter__()
        try:
            await self._subscribe(client)
        except BaseException:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
            raise
        self._client, self._paho = client, inner
        self._connection += 1
        if self._connection > 1:
            kit = self.stats.source_counts
            kit.add(kit.reconnects_total, self._key, 1)
        log.info(
            "mqtt_connected source=%s host=%s port=%d client_id=%s topics=%s",
            self.name,
            self.endpoint.host,
            self.endpoint.port,
            self.client_id,
            ",".join(self.topics),
        )
        return self

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        if self.protocol is aiomqtt.ProtocolVersion.V5:
            # retainHandling=1: a retained message comes only with a new subscription,
            # not again on every reconnect of the persistent session.
            granted = await client.subscribe(
                [(t, SubscribeOptions(qos=1, retainHandling=1)) for t in self.topics]
            )
        else:
            granted = await client.subscribe([(t, 1) for t in self.topics])
        for topic, code in zip(self.topics, granted, strict=False):
            value = code.value if isinstance(code, ReasonCode) else cast(int, code)
            if value != 1:
                # QoS 0 would lose events the broker cannot redeliver; 0x80+ is a refusal.
                what = "refused" if value >= 0x80 else f"granted QoS {value} instead of 1"
                raise MqttSourceError(f"the broker {what} the subscription to {topic!r}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Disconnect; what was not acknowledged stays in the broker's session."""
        client, self._client, self._paho = self._client, None, None
        self._inbox.clear()
        if client is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await client.__aexit__(None, None, None)
            # aiomqtt keeps a lost connection's error for its message iterator, which this
            # source does not use: read it here, or asyncio logs it as never retrieved.
            lost = client._disconnected
            if lost.done() and not lost.cancelled():
                lost.exception()

    def _on_message(self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        # Called by paho on the event loop thread: keep it to an append.
        self._inbox.append(msg)
        if not self._wake.is_set():
            self._wake.set()

    def _check_connected(self) -> None:
        inner = self._paho
        if inner is None or not inner.is_connected() or inner.socket() is None:
            raise MqttConnectionLost(
                f"connection to {self.endpoint.host}:{self.endpoint.port} lost"
            )

    async def _wait(self, deadline: float | None) -> None:
        """Until a message arrives, the deadline passes, or the connection is lost (raises)."""
        self._wake.clear()
        self._check_connected()
        loop = asyncio.get_running_loop()
        until = deadline if deadline is not None else loop.time() + _LIVENESS_S
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(until):
                await self._wake.wait()
        self._check_connected()

    # ------------------------------------------------------------------ batches

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Batch]:
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        while True:
            while not inbox:
                await self._wait(None)
            deadline = loop.time() + self.linger_s
            not_after = self._not_after() if self._not_after is not None else None
            events: list[Event] = []
            rejected: dict[str, int] = {}
            acks: list[tuple[int, int]] = []
            spans: list[_Span] = []
            letters: list[tuple[str, bytes, str]] = []  # (topic, dead letter, reason)
            redelivered = 0
            resent: list[int] = []  # positions of events from redelivered messages
            while True:
                while inbox and len(events) < self.batch_events:
                    msg = inbox.popleft()
                    acks.append((msg.mid, msg.qos))
                    redelivered += msg.dup
                    first = len(events)
                    self._take(msg, not_after, events, rejected, spans, letters)
                    if msg.dup:
                        resent.extend(range(first, len(events)))
                if len(events) >= self.batch_events or loop.time() >= deadline:
                    break
                await self._wait(deadline)
            name = self.name
            stats = self.stats
            stats.mqtt_messages_total[name] += len(acks)
            kit = stats.source_counts
            kit.add(kit.received_total, self._key, len(acks))
            kit.add(kit.events_total, self._key, len(events))
            for reason, n in rejected.items():
                kit.reject(self._key, reason, n)
            if redelivered:
                stats.mqtt_redelivered_total[name] += redelivered
            if letters:
                await self._publish_letters(letters)
            # A redelivered message's events the service already has are resends (a
            # PUBACK lost to a crash), not duplicates: the writer tells them apart.
            yield Batch(
                events,
                name,
                rejected,
                self._acker(acks, spans, events),
                resent=frozenset(resent),
            )

    def _take(
        self,
        msg: paho.MQTTMessage,
        not_after: float | None,
        events: list[Event],
        rejected: dict[str, int],
        spans: list[_Span],
        letters: list[tuple[str, bytes, str]],
    ) -> None:
        """Decode one message into the batch being collected (no await: per message)."""
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers refuse such topics; never trust it
            topic = msg._topic.decode("utf-8", errors="backslashreplace")
        site = self._site(topic)
        raw = msg.payload
        payload = raw if isinstance(raw, bytes) else bytes(raw)
        try:
            decoded = decode_message(
                payload,
                site,
                max_bytes=self.max_bytes,
                max_events=self.max_events,
                not_after=not_after,
            )
        except Exception:  # a bug must not turn one message into a redelivery loop
            log.exception("mqtt_decode_error source=%s topic=%s", self.name, topic)
            decoded = Message(failure="internal_error", failure_message="decoding failed (logged)")
        for reason, n in decoded.rejected_by_reason.items():
            rejected[reason] = rejected.get(reason, 0) + n
        received_at = self._clock()
        if decoded.failure is not None or decoded.rejections:
            letter = dead_letter(
                decoded,
                payload,
                source=self.name,
                topic=topic,
                received_at=received_at,
                keep=self.letter_keep,
                bound=self.max_bytes,
            )
            reason = decoded.failure or decoded.rejections[0].reason
            letters.append((deadletter_topic(site), letter, reason))
        if decoded.events and decoded.failure is None:
            taken = decoded.events
            if self._future is not None:
                taken = self._ahead(taken, topic, site, received_at, rejected, letters)
            if taken:
                spans.append(_Span(len(events), topic, site, received_at))
                events.extend(taken)

    def _ahead(
        self,
        decoded: list[Event],
        topic: str,
        site: str | None,
        received_at: float,
        rejected: dict[str, int],
        letters: list[tuple[str, bytes, str]],
    ) -> list[Event]:
        """The events of a message within this source's allowance of events ahead of the
        clock ([limits] max_future_events); the others are counted and dead-lettered."""
        gate = self._future
        assert gate is not None
        refused = gate.take(self.name, decoded)
        if not refused:
            return decoded
        refusal = gate.refusal
        rejected[refusal.reason] = rejected.get(refusal.reason, 0) + len(refused)
        skip = set(refused)
        taken = [event for i, event in enumerate(decoded) if i not in skip]
        letter = refused_letter(
            [(i, refusal.reason, refusal.field, refusal.message, decoded[i]) for i in refused],
            source=self.name,
            topic=topic,
            received_at=received_at,
            accepted=len(taken),
            keep=self.letter_keep,
            bound=self.max_bytes,
        )
        letters.append((deadletter_topic(site), letter, refusal.reason))
        return taken

    async def _publish_letters(self, letters: list[tuple[str, bytes, str]]) -> None:
        """Publish dead letters (QoS 1) and wait for the broker to take them all.

        A failure raises: the source reconnects and the messages come again, so a bad
        message is never acknowledged before its dead letter is with the broker.
        """
        client = self._client
        if client is None:
            raise MqttConnectionLost("not connected")
        await asyncio.gather(
            *(client.publish(topic, letter, qos=1) for topic, letter, _ in letters)
        )
        counts = self.stats.mqtt_deadletters_total
        for _, _, reason in letters:
            key = (self.name, reason)
            counts[key] = counts.get(key, 0) + 1
            self.stats.source_counts.dead_letter(self._key, reason)
        log.warning("mqtt_deadletters source=%s count=%d", self.name, len(letters))

    def _acker(
        self, acks: list[tuple[int, int]], spans: list[_Span], events: list[Event]
    ) -> Callable[[Receipt], None]:
        connection = self._connection
        inner = self._paho

        def ack(receipt: Receipt) -> None:
            if (
                connection != self._connection
                or inner is None
                or inner is not self._paho
                or not inner.is_connected()
            ):
                # Reconnected (or gone) since: the broker delivers these messages again.
                self.stats.mqtt_acks_lost_total[self.name] += len(acks)
                return
            if receipt.refused:
                self._refused(inner, receipt, spans, events)
            for mid, qos in acks:
                if qos:
                    inner.ack(mid, qos)

        return ack

    def _refused(
        self, inner: paho.Client, receipt: Receipt, spans: list[_Span], events: list[Event]
    ) -> None:
        """Dead-letter the events the floor refused (counted there by reason already)."""
        starts = [span.start for span in spans]
        by_span: dict[int, list[tuple[int, str, str | None, str, Event]]] = {}
        for pos, refusal in receipt.refused:
            at = bisect.bisect_right(starts, pos) - 1
            event = events[pos]
            by_span.setdefault(at, []).append(
                (pos - spans[at].start, refusal.reason, refusal.field, refusal.message, event)
            )
        counts = self.stats.mqtt_deadletters_total
        for at, refused in by_span.items():
            span = spans[at]
            stop = spans[at + 1].start if at + 1 < len(spans) else len(events)
            letter = refused_letter(
                refused,
                source=self.name,
                topic=span.topic,
                received_at=span.received_at,
                accepted=(stop - span.start) - len(refused),
                keep=self.letter_keep,
                bound=self.max_bytes,
            )
            inner.publish(deadletter_topic(span.site), letter, qos=1)
            key = (self.name, refused[0][1])
            counts[key] = counts.get(key, 0) + 1
            self.stats.source_counts.dead_letter(self._key, refused[0][1])

"""The MQTT source against a real Mosquitto: batches, acknowledgements, sessions, auth, TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import msgspec
import pytest
from fixtures.mosquitto import Mosquitto, add_password, publish, subscribed
from helpers import T0, ev

from callfloor.config import LimitsConfig, SourceConfig
from callfloor.ingest.mqtt import MqttSource, MqttSourceError, parse_url
from callfloor.ingest.source import Batch, Receipt

TOPIC = "callfloor/sh/events"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path) as running:
        yield running


def _source(
    url: str,
    protocol: str = "5",
    *,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | None = None,
    linger_s: float = 0.005,
) -> MqttSource:
    config = SourceConfig(
        kind="mqtt",
        name="mqtt",
        url=url,
        topics=("callfloor/+/events",),
        client_id=f"cf-test-{protocol}",
        protocol=protocol,
        username=username,
        password=password,
        ca_file=ca_file,
    )
    return MqttSource(config, LimitsConfig(), linger_s=linger_s)


def _events(n: int, start: int = 0) -> list[bytes]:
    return [
        msgspec.json.encode(ev("call_queued", T0 + i, call_id=f"c{i}", queue="q", id=f"e{i}"))
        for i in range(start, start + n)
    ]


async def _next(batches: AsyncIterator[Batch], timeout: float = 5.0) -> Batch:
    async with asyncio.timeout(timeout):
        return await anext(batches)


async def _batches_until(source: MqttSource, n: int) -> list[Batch]:
    """Batches from an entered source until they hold ``n`` events."""
    got: list[Batch] = []
    batches = aiter(source)
    while sum(b.size for b in got) < n:
        got.append(await _next(batches))
    return got


async def _nothing_comes(source: MqttSource, wait: float = 0.5) -> bool:
    batches = aiter(source)
    try:
        async with asyncio.timeout(wait):
            await anext(batches)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_unacknowledged_messages_come_again_after_a_restart(
    broker: Mosquitto, protocol: str
) -> None:
    """Messages whose batch was never acknowledged are redelivered to a new client (same id)."""
    first = _source(broker.url, protocol)
    async with first:  # creates the persistent session and its subscription
        await publish(broker, TOPIC, _events(3))
        got = await _batches_until(first, 3)
    assert [e.call_id for b in got for e in b.events] == ["c0", "c1", "c2"]  # type: ignore[union-attr]
    restarted = _source(broker.url, protocol)  # a new process: new objects, the same client_id
    async with restarted:
        again = await _batches_until(restarted, 3)
        for batch in again:
            assert batch.ack is not None
            batch.ack(Receipt())
        await asyncio.sleep(0.2)  # the PUBACKs reach the broker
    assert restarted.stats.mqtt_redelivered_total["mqtt"] == 3
    # The writer is told which events came again (resends if it has them already).
    assert [sorted(b.resent) for b in again if isinstance(b.resent, frozenset)] == [
        list(range(b.size)) for b in again
    ]
    assert all(not b.resent for b in got)
    third = _source(broker.url, protocol)
    async with third:
        assert await _nothing_comes(third)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_events_published_while_down_are_kept_by_the_session(
    broker: Mosquitto, protocol: str
) -> None:
    """The broker keeps what is published while callfloor is away, and hands it over later."""
    source = _source(broker.url, protocol)
    async with source:
        pass  # the session exists now
    await publish(broker, TOPIC, _events(4))
    async with source:
        got = await _batches_until(source, 4)
    assert sum(b.size for b in got) == 4


async def test_one_batch_acknowledges_every_message_in_it(broker: Mosquitto) -> None:
    """Messages arriving together form one batch; its ack acknowledges all of them."""
    source = _source(broker.url, linger_s=0.2)
    async with source:
        await publish(broker, TOPIC, _events(20))
        batch = await _next(aiter(source))
        assert batch.size == 20 and batch.source == "mqtt"
        assert batch.ack is not None
        batch.ack(Receipt())
        await asyncio.sleep(0.2)
    async with source:
        assert await _nothing_comes(source)


async def test_acks_of_an_old_connection_are_not_sent(broker: Mosquitto) -> None:
    """A batch acknowledged after its connection was replaced is redelivered, and counted."""
    source = _source(broker.url)
    async with source:
        await publish(broker, TOPIC, _events(1))
        old = await _next(aiter(source))
    async with source:
        assert old.ack is not None
        old.ack(Receipt())
        again = await _next(aiter(source))
    assert source.stats.mqtt_acks_lost_total["mqtt"] == 1
    assert [e.id for e in again.events] == ["e0"]


async def test_a_lost_connection_ends_the_batches_with_an_error(broker: Mosquitto) -> None:
    """When the broker goes away, the iterator raises (the supervisor reconnects)."""
    source = _source(broker.url)
    async with source:
        broker.kill()
        with pytest.raises(Exception, match="lost"):
            await _next(aiter(source))


async def test_bad_messages_are_dead_lettered_before_they_are_acknowledged(
    broker: Mosquitto,
) -> None:
    """A message without a valid event is on callfloor/<site>/deadletter by the time its batch
    goes to the service; the valid events of a mixed message are in the batch."""
    source = _source(broker.url)
    good = _events(1)[0]
    async with subscribed(broker, "callfloor/+/deadletter") as letters, source:
        await publish(broker, TOPIC, [b"not json", good + b'\n{"type":"call_queued"}'])
        got = await _batches_until(source, 1)
        first = await asyncio.wait_for(letters.get(), 5)
        second = await asyncio.wait_for(letters.get(), 5)
    assert sum(b.size for b in got) == 1
    assert {r: n for b in got for r, n in b.rejected.items()} == {
        "invalid_json": 1,
        "missing_field": 1,
    }
    assert str(first.topic) == "callfloor/sh/deadletter"
    whole = msgspec.json.decode(first.payload)
    assert (whole["reason"], whole["topic"], whole["payload"]) == (
        "invalid_json",
        TOPIC,
        "not json",
    )
    partial = msgspec.json.decode(second.payload)
    assert partial["accepted"] == 1 and partial["rejected"][0]["reason"] == "missing_field"
    assert source.stats.mqtt_deadletters_total == {
        ("mqtt", "invalid_json"): 1,
        ("mqtt", "missing_field"): 1,
    }


async def test_a_subscription_below_qos_1_is_refused(tmp_path: Path) -> None:
    """A broker that grants QoS 0 could lose events: the source says so and does not run."""
    with Mosquitto(tmp_path, listener_options="max_qos 0\n") as limited:
        source = _source(limited.url)
        with pytest.raises(MqttSourceError, match="QoS 0"):
            async with source:
                pass


async def test_username_and_password(tmp_path: Path) -> None:
    """With a password file, the right credentials connect and wrong ones are refused."""
    broker = Mosquitto(tmp_path, extra="")
    passwd = add_password(broker, "callfloor", "s3cret")
    broker.conf.write_text(
        broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
        + f"password_file {passwd}\n"
    )
    with broker:
        wrong = _source(broker.url, username="callfloor", password="nope")
        with pytest.raises(aiomqtt.MqttError):
            async with wrong:
                pass
        right = _source(broker.url, username="callfloor", password="s3cret")
        async with right:
            async with aiomqtt.Client(
                broker.host, broker.port, username="callfloor", password="s3cret"
            ) as client:
                await client.publish(TOPIC, _events(1)[0], qos=1)
            assert (await _next(aiter(right))).size == 1


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.crt", "s.key", "s.csr", "s.crt")
    )
    ext = directory / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=callfloor test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


async def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    """mqtts:// with ca_file trusts the broker's certificate; without it the source refuses."""
    ca, cert, key = _certificates(tmp_path)
    options = f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    with Mosquitto(tmp_path, listener_options=options) as broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        untrusted = _source(url)
        with pytest.raises(aiomqtt.MqttError):
            async with untrusted:
                pass
        trusted = _source(url, ca_file=str(ca))
        async with trusted:
            context = ssl.create_default_context(cafile=str(ca))
            async with aiomqtt.Client("127.0.0.1", broker.port, tls_context=context) as client:
                await client.publish(TOPIC, _events(1)[0], qos=1)
            assert (await _next(aiter(trusted))).size == 1


def test_urls_are_checked() -> None:
    """mqtt:// and mqtts:// with their default ports; anything else names the problem."""
    assert parse_url("mqtt://broker") == parse_url("mqtt://broker:1883")
    assert parse_url("mqtts://broker").port == 8883
    for bad, why in (
        ("http://broker", "expected mqtt"),
        ("mqtt://", "no host"),
        ("mqtt://u:p@broker", "username and password"),
        ("mqtt://broker/x", "only mqtt"),
    ):
        with pytest.raises(MqttSourceError, match=why):
            parse_url(bad)


def test_bad_topic_filters_are_refused() -> None:
    """A topic filter that is not valid MQTT is refused when the source is built."""
    config = SourceConfig(kind="mqtt", name="m", url="mqtt://x", topics=("a/b+/c",))
    with pytest.raises(MqttSourceError, match="a/b\\+/c"):
        MqttSource(config, LimitsConfig())


@pytest.mark.parametrize("wide", ["#", "callfloor/#", "callfloor/+/+", "+/+/deadletter"])
def test_filters_matching_the_dead_letter_topics_are_refused(wide: str) -> None:
    """A filter that would take callfloor's own dead letters back in is refused, by name."""
    config = SourceConfig(kind="mqtt", name="m", url="mqtt://x", topics=(wide,))
    with pytest.raises(MqttSourceError, match="dead-letter"):
        MqttSource(config, LimitsConfig())


@pytest.mark.parametrize("narrow", ["callfloor/+/events", "acd/+/events", "callfloor/lon/events/#"])
def test_filters_beside_the_dead_letter_topics_are_taken(narrow: str) -> None:
    """Filters that cannot match callfloor/<site>/deadletter are accepted."""
    config = SourceConfig(kind="mqtt", name="m", url="mqtt://x", topics=(narrow,))
    assert MqttSource(config, LimitsConfig()).topics == (narrow,)


def test_protocol_is_configured() -> None:
    """`protocol` is "5" (default, or the number 5) or "3.1.1"; anything else is named."""
    from callfloor.config import ConfigError, parse_config

    def protocol(value: object) -> str:
        entry: dict[str, object] = {"kind": "mqtt"}
        if value is not None:
            entry["protocol"] = value
        [source] = parse_config({"sources": [entry]}, "<test>").sources
        return source.protocol

    assert (protocol(None), protocol(5), protocol("3.1.1")) == ("5", "5", "3.1.1")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.protocol"):
        protocol("4")
    source = MqttSource(
        SourceConfig(kind="mqtt", name="m", url="mqtt://x", protocol="3.1.1"), LimitsConfig()
    )
    assert source.protocol is aiomqtt.ProtocolVersion.V311

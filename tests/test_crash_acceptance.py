"""SPEC §9's guarantee under fire: a simulated day published over MQTT and posted over
HTTP, the server SIGKILLed at random moments and restarted, ends in the state
`callfloor replay` gives for the same events at the same `as_of` (nothing lost,
nothing counted twice), for each durable store (`file://` and `redis://`, a real redis-server).

Real processes throughout: Mosquitto (the fixture, deploy/mosquitto.conf), `callfloor
serve` with an MQTT source and the store, a publisher (paho-mqtt, QoS 1) sending the call
events and a poster sending the agent states over HTTP in small bodies, retrying each
until it is answered 202. The server is killed (SIGKILL: no shutdown, no last
checkpoint) at three or more moments drawn from a seeded random generator and started
again on the same port each time; the broker keeps what arrives meanwhile for callfloor's
persistent session. The trace's tail lies a few seconds in the future, so events are held
ahead of the clock across the kills too.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.mosquitto import Mosquitto
from fixtures.redis_server import RedisServer
from serving import ServeProcess, free_port, ndjson, replay_cli
from traces import DAY0, Event, assert_same_document, shifted, simulate, split_feeds, write_ndjson

HOURS = 3.0
AHEAD_S = 25.0  # the trace ends this long after the run starts
SEND_S = 14.0  # both feeds are spread over this long
KILLS = 3
POST_EVENTS = 25  # agent states per HTTP body
MESSAGE_EVENTS = 5  # call events per MQTT message (NDJSON)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path) as running:
        yield running


class Server:
    """`callfloor serve` started again on the same port after every kill."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = free_port()
        self.current = ServeProcess(config, self.port)
        self.started = [self.current]
        self.current.wait_ready(timeout=20.0)
        self.kills = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def crash_and_restart(self) -> None:
        self.current.kill()
        self.kills += 1
        self.current = ServeProcess(self.config, self.port)
        self.started.append(self.current)
        self.current.wait_ready(timeout=20.0)

    def stop(self) -> None:
        self.current.stop()


def _publish(broker: Mosquitto, calls: list[Event], errors: list[BaseException]) -> None:
    """Call events over MQTT, steadily over SEND_S; QoS 1, each PUBACK from the broker."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    try:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="crash-publisher")
        client.connect(broker.host, broker.port)
        client.loop_start()
        messages = [calls[i : i + MESSAGE_EVENTS] for i in range(0, len(calls), MESSAGE_EVENTS)]
        start = time.monotonic()
        pending = []
        for k, chunk in enumerate(messages):
            time.sleep(max(0.0, start + SEND_S * k / len(messages) - time.monotonic()))
            site = chunk[0].get("site", "default")
            body = "\n".join(json.dumps(e, separators=(",", ":")) for e in chunk)
            pending.append(client.publish(f"callfloor/{site}/events", body, qos=1))
        for info in pending:
            info.wait_for_publish(timeout=30)
        unpublished = [k for k, info in enumerate(pending) if not info.is_published()]
        if unpublished:
            raise RuntimeError(f"messages {unpublished[:10]} were never acknowledged by the broker")
        client.loop_stop()
        client.disconnect()
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def _post(server: Server, agents: list[Event], errors: list[BaseException]) -> None:
    """Agent states over HTTP, steadily over SEND_S; each body retried until a 202."""
    try:
        bodies = [agents[i : i + POST_EVENTS] for i in range(0, len(agents), POST_EVENTS)]
        start = time.monotonic()
        for k, chunk in enumerate(bodies):
            time.sleep(max(0.0, start + SEND_S * k / len(bodies) - time.monotonic()))
            body = ndjson(chunk)
            deadline = time.monotonic() + 60
            while True:
                request = urllib.request.Request(
                    f"{server.base}/api/v1/events",
                    data=body,
                    method="POST",
                    headers={"Content-Type": "application/x-ndjson"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as resp:
                        if resp.status == 202:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass  # down, restarting, or 503: send the same body again
                if time.monotonic() > deadline:
                    raise RuntimeError("a body was never acknowledged")
                time.sleep(0.1)
    except BaseException as exc:
        errors.append(exc)


def _missing(server: Server, calls: list[Event], agents: list[Event]) -> str:
    """Which events the last checkpoint lacks, the message or body that carried them,
    and what every run of the server logged above INFO (to tell where they were lost)."""
    from callfloor.config import load_config
    from callfloor.processors.state import decode_checkpoint
    from callfloor.store.base import ALL
    from callfloor.store.open import open_store

    config = load_config(server.config)

    async def load() -> bytes | None:
        store = open_store(config.store, sites=config.named_sites())
        await store.open()
        try:
            return await store.load(ALL)
        finally:
            await store.close()

    lines = []
    blob = asyncio.run(load())
    if blob is None:
        lines.append("no checkpoint")
    else:
        restored = decode_checkpoint(config, blob, live=True)
        ids = restored.processor.ids
        known = set(ids.current) | set(ids.previous) | {e.id for e in restored.held}
        for name, feed, size in (
            ("MQTT message", calls, MESSAGE_EVENTS),
            ("HTTP body", agents, POST_EVENTS),
        ):
            for i, event in enumerate(feed):
                if event["id"] not in known:
                    lines.append(f"missing {event['id']} ts={event['ts']}: {name} {i // size}")
    for run, process in enumerate(server.started):
        noted = [line for line in process.output().splitlines() if " INFO " not in line]
        lines.append(f"run {run}: " + ("\n  ".join(noted[-30:]) or "nothing above INFO"))
    return "\n".join(lines)


def _config(tmp_path: Path, toml: str, store_url: str, broker: Mosquitto) -> Path:
    config = tmp_path / "callfloor.toml"
    config.write_text(
        toml
        + f'\n[store]\nurl = "{store_url}"\ncheckpoint_every = "2s"\n'
        + f'\n[[sources]]\nkind = "mqtt"\nurl = "{broker.url}"\nclient_id = "callfloor-crash"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture(params=["file", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A durable store: a file directory, or a real redis-server (deploy/redis.conf)."""
    if request.param == "file":
        yield f"file://{tmp_path / 'state'}"
        return
    with RedisServer(tmp_path) as redis:
        yield redis.url


def test_a_day_over_mqtt_and_http_survives_sigkills(
    tmp_path: Path, broker: Mosquitto, store_url: str
) -> None:
    """Three or more SIGKILLs while both feeds deliver: the final snapshot equals the
    replay of the trace at its as_of (counters.late aside), duplicates included."""
    trace = simulate(seed=3, agents=30, queues=4, sites=2, hours=HOURS, start=DAY0 + 8 * 3600.0)
    end = max(float(e["ts"]) for e in trace.events)
    events = shifted(trace.events, round(time.time() + AHEAD_S - end, 3))
    calls, agents = split_feeds(events)
    config = _config(tmp_path, trace.toml, store_url, broker)
    rng = random.Random(20261130)
    moments = sorted(rng.uniform(1.5, SEND_S - 1.0) for _ in range(KILLS))

    server = Server(config)
    errors: list[BaseException] = []
    feeds = [
        threading.Thread(target=_publish, args=(broker, calls, errors)),
        threading.Thread(target=_post, args=(server, agents, errors)),
    ]
    started = time.monotonic()
    for feed in feeds:
        feed.start()
    try:
        for moment in moments:
            time.sleep(max(0.0, started + moment - time.monotonic()))
            server.crash_and_restart()
        for feed in feeds:
            feed.join(timeout=120)
        assert not errors, errors
        assert not any(feed.is_alive() for feed in feeds), "a feed did not finish in 120 s"
        # Every held event is due once the clock passes the trace's end.
        time.sleep(max(0.0, float(events[-1]["ts"]) - time.time() + 1.5))
        try:
            live = server.current.snapshot_after(len(events), timeout=60.0)
        except RuntimeError as exc:
            server.stop()  # its last checkpoint says which events it has
            raise AssertionError(f"{exc}\n{_missing(server, calls, agents)}") from None
    finally:
        server.stop()
    assert server.kills >= KILLS
    assert live["counters"]["duplicates"] == 0
    as_of = float(live["as_of"])
    replayed = replay_cli(config, write_ndjson(tmp_path / "trace.ndjson", events), as_of)
    # History posted hours late (or across a restart or a handover) is beyond the
    # live alert snapshots: its alert instants are the clock's (docs/alerts.md).
    assert_same_document(
        live, replayed, f"the live snapshot after {server.kills} kills and replay", alerts=False
    )

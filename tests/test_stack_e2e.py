"""End to end on `make stack`'s topology: Redis, Mosquitto, callfloor, a real Prometheus and
Alertmanager as local processes (callfloor.devstack), from the deploy/ files
docker-compose.yml uses, with the demo profile's simulator publishing over MQTT.

One stack serves the module; each test sends its own events to its own queue or site
(the simulator's queues are named for their sites, lon-... and sh-...), so the tests do
not depend on each other's order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion

from callfloor import devstack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Stack]:
    """The whole stack on free loopback ports; a missing service fails (never skips)."""
    try:
        running = devstack.start(
            tmp_path_factory.mktemp("stack"),
            callfloor_port=0,
            prometheus_port=0,
            redis_port=0,
            mqtt_port=0,
            alertmanager_port=0,
            grafana_port=0,
            token="e2e-token",
            scrape_interval_s=1,
            profiles=("demo",),
        )
    except devstack.StackError as exc:
        pytest.fail(f"the stack did not start (run `make test`, which installs it): {exc}")
    yield running
    running.stop()


def _post(stack: devstack.Stack, events: list[dict[str, Any]], token: str | None) -> int:
    """POST events as NDJSON (with ``token`` as the bearer token); the status."""
    headers = {"Content-Type": "application/x-ndjson"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = "".join(json.dumps(e) + "\n" for e in events).encode()
    req = urllib.request.Request(
        f"{stack.callfloor_url}/api/v1/events", data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def _publish(stack: devstack.Stack, topic: str, events: list[dict[str, Any]]) -> None:
    """Publish events as one NDJSON message at QoS 1 and wait for the broker's PUBACK."""
    url = urllib.parse.urlsplit(stack.mqtt_url)
    assert url.hostname is not None and url.port is not None
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="e2e-publisher")
    client.connect(url.hostname, url.port)
    client.loop_start()
    try:
        info = client.publish(topic, "\n".join(json.dumps(e) for e in events), qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return list(json.loads(resp.read())["data"]["result"])
    except OSError:
        return []


def _until(base: str, promql: str, expected: str, timeout_s: float = 15) -> list[dict[str, Any]]:
    """Query until the first series has the expected value (or time is up); the result."""
    deadline = time.monotonic() + timeout_s
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = _query(base, promql)
        if result and result[0]["value"][1] == expected:
            break
        time.sleep(0.25)
    return result


def test_events_posted_with_the_token_reach_prometheus(stack: devstack.Stack) -> None:
    """Events POSTed with the token show up in Prometheus: up == 1, the offered counter, and
    a wait bucket at the queue's SL threshold (deploy/callfloor.toml: sales T = 20 s)."""
    now = time.time()
    events = [
        {"type": "call_queued", "ts": now - 3, "call_id": "e2e-1", "queue": "sales"},
        {"type": "call_queued", "ts": now - 2, "call_id": "e2e-2", "queue": "sales"},
        {"type": "call_answered", "ts": now - 1, "call_id": "e2e-1", "agent": "a1"},
    ]
    assert _post(stack, events, token=stack.token) == 202
    offered = _until(stack.prometheus_url, 'callfloor_queue_offered_total{queue="sales"}', "2")
    assert offered and offered[0]["value"][1] == "2"
    assert _query(stack.prometheus_url, 'up{job="callfloor"}')[0]["value"][1] == "1"
    bucket = _query(
        stack.prometheus_url,
        'callfloor_queue_wait_seconds_bucket{queue="sales",outcome="answered",le="20.0"}',
    )
    assert bucket and bucket[0]["value"][1] == "1"


def test_post_without_the_token_is_refused_with_401(stack: devstack.Stack) -> None:
    """deploy/callfloor.toml's write_tokens = ["env:CALLFLOOR_TOKEN"]: no bearer token, 401."""
    event = {"type": "call_queued", "ts": time.time(), "call_id": "e2e-anon", "queue": "sales"}
    assert _post(stack, [event], token=None) == 401


def test_post_with_a_wrong_token_is_refused_with_401(stack: devstack.Stack) -> None:
    """A bearer token that is not $CALLFLOOR_TOKEN is refused with 401."""
    event = {"type": "call_queued", "ts": time.time(), "call_id": "e2e-wrong", "queue": "sales"}
    assert _post(stack, [event], token=stack.token + "x") == 401


def test_events_published_over_mqtt_reach_prometheus(stack: devstack.Stack) -> None:
    """Events published to the stack's Mosquitto on callfloor/lon/events reach Prometheus."""
    now = time.time()
    events = [
        {"type": "call_queued", "ts": now - 2, "call_id": f"e2e-mqtt-{i}", "queue": "support"}
        for i in range(3)
    ]
    _publish(stack, "callfloor/lon/events", events)
    offered = _until(stack.prometheus_url, 'callfloor_queue_offered_total{queue="support"}', "3")
    assert offered and offered[0]["value"][1] == "3"


def test_readyz_shows_the_redis_store_and_floor_up(stack: devstack.Stack) -> None:
    """/readyz is ready with the store up, the partition leased and the Redis floor up."""
    with urllib.request.urlopen(f"{stack.callfloor_url}/readyz", timeout=5) as resp:
        ready = json.loads(resp.read())
    assert ready["status"] == "ready"
    assert ready["store"] == "up"
    assert ready["ownership"]["leases"] == "up"
    assert ready["redis_floor"]["state"] == "up"


def test_posted_events_are_in_the_redis_stream_of_their_site(stack: devstack.Stack) -> None:
    """An accepted event is appended to the stack's Redis, in callfloor:events:<its site>."""
    event = {
        "type": "call_queued",
        "ts": time.time(),
        "site": "sh",
        "call_id": "e2e-in-redis",
        "queue": "e2e-store",
    }
    assert _post(stack, [event], token=stack.token) == 202
    client = redis.Redis.from_url(stack.redis_url)
    try:
        entries = client.xrange("callfloor:events:sh")
    finally:
        client.close()
    assert any(b"e2e-in-redis" in fields[b"r"] for _, fields in entries)


def test_configured_queue_without_events_is_exposed(stack: devstack.Stack) -> None:
    """A queue configured in deploy/callfloor.toml is in Prometheus before any of its calls."""
    info = _until(stack.prometheus_url, 'callfloor_queue_info{queue="webchat"}', "1")
    assert info and info[0]["metric"]["site"] == "sh"


def _simulated_queues(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The queues of the demo profile's simulated floor (its --write-config)."""
    config = tmp_path_factory.mktemp("sim") / "floor.toml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "callfloor",
            "simulate",
            "--duration",
            "1s",
            "--output",
            "/dev/null",
            "--write-config",
            str(config),
        ],
        check=True,
    )
    return {
        line.removeprefix("[queues.").removesuffix("]")
        for line in config.read_text(encoding="utf-8").splitlines()
        if line.startswith("[queues.")
    }


def test_the_simulated_floor_reaches_prometheus_over_mqtt_with_every_queues_service_level(
    stack: devstack.Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """simulator -> MQTT -> callfloor -> Prometheus: every simulated queue that has had a
    call reach its service-level event has its service level in Prometheus (0..1), from
    events that came over MQTT."""
    simulated = _simulated_queues(tmp_path_factory)
    pattern = "|".join(sorted(simulated))
    base = stack.prometheus_url
    deadline = time.monotonic() + 60
    with_sl_events: set[str] = set()
    levels: dict[str, float] = {}
    while time.monotonic() < deadline:
        with_sl_events = {
            r["metric"]["queue"]
            for r in _query(base, f'callfloor_queue_sl_offered_total{{queue=~"{pattern}"}} > 0')
        }
        levels = {
            r["metric"]["queue"]: float(r["value"][1])
            for r in _query(
                base,
                f'callfloor_queue_service_level_ratio{{queue=~"{pattern}", window="60m"}}',
            )
        }
        if len(with_sl_events) >= 2 and with_sl_events <= set(levels):
            break
        time.sleep(0.5)
    assert len(with_sl_events) >= 2, f"the simulated floor did not arrive: {with_sl_events}"
    assert with_sl_events <= set(levels), f"no service level for {with_sl_events - set(levels)}"
    assert set(levels) <= simulated and all(0 <= v <= 1 for v in levels.values())
    over_mqtt = _query(base, 'callfloor_ingest_events_total{source="mqtt"}')
    assert over_mqtt and float(over_mqtt[0]["value"][1]) > 0

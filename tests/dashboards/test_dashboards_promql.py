"""Every PromQL expression of the committed boards returns data from a real Prometheus.

A test fixture runs `make stack`'s topology on free loopback ports (callfloor.devstack:
Redis, Mosquitto, `callfloor serve`, Alertmanager, and a `prometheus` process scraping
callfloor every second) with deploy/callfloor.toml plus per-agent series and a short
not-ready limit. It is fed what a floor and its operations produce: the last half hour
of a simulated floor over MQTT, an agent long in not_ready, a rejected event, a refused
body, a resent body, a malformed MQTT message and a Redis connection dropped under the
store's follower. Then each panel's query, with the board's variables set to "All" (or
their default) and $__rate_interval to 30s, must return at least one series.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion

from callfloor import devstack

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RATE_INTERVAL = "30s"


def _config(tmp: Path) -> Path:
    """deploy/callfloor.toml with per-agent series on and not-ready limited to 1 minute."""
    text = (devstack.DEPLOY / "callfloor.toml").read_text(encoding="utf-8")
    changed = text.replace("per_agent_series = false", "per_agent_series = true").replace(
        'not_ready_max = "10m"', 'not_ready_max = "1m"'
    )
    assert changed.count("per_agent_series = true") == 1 and 'not_ready_max = "1m"' in changed
    path = tmp / "callfloor.toml"
    path.write_text(changed, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Stack]:
    """The stack on free ports, scraped every second; a missing binary fails the test."""
    work = tmp_path_factory.mktemp("boards")
    try:
        running = devstack.start(
            work / "stack",
            callfloor_port=0,
            prometheus_port=0,
            redis_port=0,
            mqtt_port=0,
            alertmanager_port=0,
            grafana_port=0,
            token="boards-token",
            config=_config(work),
            scrape_interval_s=1,
        )
    except devstack.StackError as exc:
        pytest.fail(f"the stack did not start (run `make test`, which installs it): {exc}")
    try:
        _feed(running)
        yield running
    finally:
        running.stop()


def _post(stack: devstack.Stack, body: bytes, content_type: str = "application/x-ndjson") -> int:
    req = urllib.request.Request(
        f"{stack.callfloor_url}/api/v1/events",
        data=body,
        method="POST",
        headers={"Content-Type": content_type, "Authorization": f"Bearer {stack.token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def _publish(stack: devstack.Stack, topic: str, payload: bytes) -> None:
    url = urllib.parse.urlsplit(stack.mqtt_url)
    assert url.hostname is not None and url.port is not None
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="boards-publisher")
    client.connect(url.hostname, url.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


def _feed(stack: devstack.Stack) -> None:
    """What a working floor and its operations produce (see the module docstring)."""
    now = int(time.time())
    simulated = subprocess.run(
        [
            sys.executable,
            "-m",
            "callfloor",
            "simulate",
            "--start",
            str(now - 1800),
            "--duration",
            "30m",
            "--mqtt",
            stack.mqtt_url,
            "--client-id",
            "boards-sim",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert simulated.returncode == 0, simulated.stderr
    nr = {
        "type": "agent_state",
        "ts": now - 300,
        "id": "b-nr",
        "site": "lon",
        "agent": "b-a1",
        "state": "not_ready",
        "queues": ["sales"],
        "team": "blue",
        "name": "Ada",
    }
    bad = {"type": "call_queued", "ts": now - 5, "id": "b-bad", "queue": "sales"}  # no call_id
    body = (json.dumps(nr) + "\n" + json.dumps(bad) + "\n").encode()
    assert _post(stack, body) == 202
    assert _post(stack, body) == 202  # the same body again: recognised as a resend
    assert _post(stack, b"not json", content_type="text/plain") == 415
    _publish(stack, "callfloor/lon/events", b"{not json")  # a dead letter
    # Drop the Redis connection the store's follower blocks on: a failed "read", retried.
    client = redis.Redis.from_url(stack.redis_url)
    try:
        deadline = time.monotonic() + 20
        killed = 0
        while not killed and time.monotonic() < deadline:
            for entry in client.client_list():
                if entry.get("cmd") in ("xread", "xreadgroup"):
                    killed += int(client.client_kill_filter(_id=entry["id"]))
            time.sleep(0.1)
        assert killed, "no connection blocked in XREAD to drop"
    finally:
        client.close()


def _substitutions(board: dict[str, Any]) -> dict[str, str]:
    """Each variable as a viewer's default sees it: "All" for a query variable, the
    current value of a custom one; Grafana's $__rate_interval."""
    values = {"__rate_interval": RATE_INTERVAL}
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            values[variable["name"]] = variable["allValue"]
        elif variable["type"] == "custom":
            values[variable["name"]] = variable["current"]["value"]
    return values


def _substitute(expr: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def _queries() -> list[tuple[str, str, str]]:
    """(board, panel title, PromQL) of every panel of the committed boards."""
    out = []
    for path in sorted(BOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        values = _substitutions(board)
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((board["title"], panel["title"], _substitute(target["expr"], values)))
    return out


def _result(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        answer = json.loads(resp.read())
    assert answer["status"] == "success", (promql, answer)
    return list(answer["data"]["result"])


# Families with series only during an incident or with a feature configured: a panel
# over one of them may be empty on a healthy stack, but the family must be exposed.
ABSENT_WHEN_HEALTHY = {
    # a partition served frozen during a store outage
    "callfloor_partition_stale_since_seconds",
    # feed sources (queue_log, AMI, Connect), exposed per configured [[sources]] entry
    "callfloor_source_received_total",
    "callfloor_source_events_total",
    "callfloor_source_rejected_total",
    "callfloor_source_skipped_total",
    "callfloor_source_deadletters_total",
    "callfloor_source_reconnects_total",
    "callfloor_source_rotations_total",
    "callfloor_source_deadletters_suppressed_total",
    "callfloor_source_gap_seconds_total",
    "callfloor_source_position",
    "callfloor_source_lag_seconds",
}


def _family(promql: str) -> str | None:
    """The exempt family a query reads, if any."""
    names = set(re.findall(r"callfloor_[a-z_]+", promql))
    for name in names:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        if base in ABSENT_WHEN_HEALTHY:
            return base
    return None


def test_the_boards_have_queries_of_every_kind() -> None:
    """The committed boards hold the three boards' queries (a sanity check of the list)."""
    queries = _queries()
    assert {board for board, _, _ in queries} == {"Call floor", "Agents", "Operations", "Alerts"}
    assert len(queries) > 60


def test_every_panel_query_returns_data_from_a_real_prometheus(stack: devstack.Stack) -> None:
    """Each committed panel's PromQL returns at least one series once the fed stack has
    been scraped (waiting up to 90 s for rates to have two samples)."""
    queries = _queries()
    deadline = time.monotonic() + 90
    empty = queries
    while empty and time.monotonic() < deadline:
        empty = [q for q in empty if not _result(stack.prometheus_url, q[2])]
        if empty:
            time.sleep(1)
    exposed = urllib.request.urlopen(f"{stack.callfloor_url}/metrics", timeout=10).read().decode()
    for board, title, expr in list(empty):
        family = _family(expr)
        if family is not None:
            assert f"# HELP {family} " in exposed, f"{board} / {title}: {family} not exposed"
            empty.remove((board, title, expr))
    assert not empty, "no data for:\n" + "\n".join(f"{b} / {t}: {e}" for b, t, e in empty)

"""End to end on `make stack`'s topology: callfloor and a real Prometheus as local
processes, from the deploy/ files docker-compose.yml uses."""

from __future__ import annotations

import json
import shutil
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from callfloor import devstack


@pytest.fixture(scope="module", autouse=True)
def _prometheus_installed() -> None:
    """A missing Prometheus fails the run: a test of a real component never skips."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: run `make test` (scripts/ensure-system-deps)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Stack]:
    running = devstack.start(
        tmp_path_factory.mktemp("stack"),
        callfloor_port=_free_port(),
        prometheus_port=_free_port(),
        scrape_interval_s=1,
    )
    yield running
    running.stop()


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/x-ndjson"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def _query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return list(json.loads(resp.read())["data"]["result"])
    except OSError:
        return []


def _until(base: str, promql: str, expected: str, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    result: list[dict] = []
    while time.monotonic() < deadline:
        result = _query(base, promql)
        if result and result[0]["value"][1] == expected:
            break
        time.sleep(0.5)
    return result


def test_prometheus_scrapes_posted_events_as_counters_and_histograms(
    stack: devstack.Stack, tmp_path: Path
) -> None:
    """Events POSTed to callfloor show up in Prometheus: up == 1, the offered counter, and
    a wait bucket at the queue's SL threshold (deploy/callfloor.toml: sales T = 20 s)."""
    assert stack.prometheus_url is not None
    now = time.time()
    events = [
        {"type": "call_queued", "ts": now - 3, "call_id": "e2e-1", "queue": "sales"},
        {"type": "call_queued", "ts": now - 2, "call_id": "e2e-2", "queue": "sales"},
        {"type": "call_answered", "ts": now - 1, "call_id": "e2e-1", "agent": "a1"},
    ]
    status, reply = _post(
        f"{stack.callfloor_url}/api/v1/events",
        "\n".join(json.dumps(e) for e in events).encode(),
    )
    assert status == 202 and reply["accepted"] == 3
    offered = _until(stack.prometheus_url, 'callfloor_queue_offered_total{queue="sales"}', "2")
    assert offered and offered[0]["value"][1] == "2"
    assert _query(stack.prometheus_url, 'up{job="callfloor"}')[0]["value"][1] == "1"
    bucket = _query(
        stack.prometheus_url,
        'callfloor_queue_wait_seconds_bucket{queue="sales",outcome="answered",le="20.0"}',
    )
    assert bucket and bucket[0]["value"][1] == "1"


def test_configured_queue_without_events_is_exposed(stack: devstack.Stack) -> None:
    """A queue configured in deploy/callfloor.toml is in Prometheus before any of its calls."""
    assert stack.prometheus_url is not None
    info = _until(stack.prometheus_url, 'callfloor_queue_info{queue="webchat"}', "1")
    assert info and info[0]["metric"]["site"] == "sh"

"""`callfloor demo` end to end: a real process serving changing numbers, stopped by Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 2) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bytes(resp.read())
    except OSError:
        return None


def test_demo_serves_changing_numbers_within_ten_seconds_and_stops_cleanly() -> None:
    """The demo answers /api/v1/snapshot and /metrics within 10 s, its event count grows,
    and SIGINT stops it with exit code 0."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        first = None
        while time.monotonic() - started < 10 and first is None:
            first = _get(f"{base}/api/v1/snapshot")
            time.sleep(0.2)
        assert first is not None, "no snapshot within 10 s"
        doc = json.loads(first)
        assert doc["queues"] and doc["agents"]
        metrics = _get(f"{base}/metrics", timeout=10)
        assert metrics is not None and b"callfloor_queue_service_level_ratio{" in metrics
        events = doc["counters"]["events"]
        later = events
        # Its own deadline: a demo that answered late (still within 10 s) has as long as
        # one that answered at once to show its numbers moving.
        answered = time.monotonic()
        while time.monotonic() - answered < 20 and later == events:
            time.sleep(0.5)
            body = _get(f"{base}/api/v1/snapshot", timeout=10)
            assert body is not None
            later = json.loads(body)["counters"]["events"]
        assert later > events, "the event count did not change"
        assert json.loads(body)["counters"]["late"] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out.decode()
    assert b"stopped" in out

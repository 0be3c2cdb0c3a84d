"""A producer flooding ``callfloor serve`` with events an hour late: how long /healthz
and the late posts wait while the alert timeline is re-derived.

An hour of floor (``--events``, default 40,000: calls queued and abandoned on one queue,
the default alert rules) is posted in time order; then, for 20 s, one ``call_queued``
stamped 55 minutes ago every 100 ms, while a thread probes ``/healthz`` every 50 ms.
Each late event asks for the timeline to be derived again from the snapshot before it
(up to every kept event of the hour).

    python -m bench.bench_late_flood [--events 40000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.common import ROOT, free_port, machine

CONFIG = '[sites.s]\ntimezone = "UTC"\n[queues.q]\nsite = "s"\nsl_threshold_s = 20\n[alerts]\n'


def _request(port: int, method: str, path: str, body: bytes | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/x-ndjson"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return (
        json.loads(data)
        if resp.getheader("Content-Type", "").startswith("application/json")
        else data
    )


def _post(port: int, events: list[dict[str, Any]]) -> None:
    _request(
        port, "POST", "/api/v1/events", b"".join(msgspec.json.encode(e) + b"\n" for e in events)
    )


def _q(values: list[float], p: float) -> float:
    return sorted(values)[int(p * (len(values) - 1))] * 1000


def run(n: int, seconds: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-late-"))
    (workdir / "callfloor.toml").write_text(CONFIG)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(workdir / "callfloor.toml"),
         "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(600):
            try:
                _request(port, "GET", "/readyz")
                break
            except OSError:
                time.sleep(0.05)
        start = time.time() - 3550
        events: list[dict[str, Any]] = [
            {"type": "agent_state", "ts": start - 10, "id": "ag", "site": "s", "agent": "a",
             "state": "available", "queues": ["q"]}
        ]  # fmt: skip
        for i in range(n // 2):
            t = start + i * 3500 / (n // 2)
            events.append({"type": "call_queued", "ts": t, "id": f"q{i}", "site": "s",
                           "call_id": f"c{i}", "queue": "q"})  # fmt: skip
            events.append({"type": "call_abandoned", "ts": t + 1, "id": f"a{i}", "site": "s",
                           "call_id": f"c{i}", "queue": "q"})  # fmt: skip
        events.sort(key=lambda e: float(e["ts"]))
        for i in range(0, len(events), 5000):
            _post(port, events[i : i + 5000])
        while _request(port, "GET", "/api/v1/snapshot")["counters"]["events"] < len(events):
            time.sleep(0.2)
        latencies: list[float] = []
        probing = True

        def probe() -> None:
            while probing:
                began = time.monotonic()
                _request(port, "GET", "/healthz")
                latencies.append(time.monotonic() - began)
                time.sleep(0.05)

        prober = threading.Thread(target=probe)
        prober.start()
        posts: list[float] = []
        began = time.monotonic()
        k = 0
        while time.monotonic() - began < seconds:
            k += 1
            late = {"type": "call_queued", "ts": start + 5 + k * 0.001, "id": f"late{k}",
                    "site": "s", "call_id": f"L{k}", "queue": "q"}  # fmt: skip
            t0 = time.monotonic()
            _post(port, [late])
            posts.append(time.monotonic() - t0)
            time.sleep(0.1)
        probing = False
        prober.join()
        metrics = _request(port, "GET", "/metrics").decode()
        done = [
            line for line in metrics.splitlines()
            if line.startswith("callfloor_alert_rederivations_total")
        ]  # fmt: skip
        return {
            "events": len(events),
            "late_posts": k,
            "healthz_ms": {p: round(_q(latencies, p), 1) for p in (0.5, 0.99, 1.0)},
            "healthz_probes": len(latencies),
            "late_post_ms": {p: round(_q(posts, p), 1) for p in (0.5, 0.99, 1.0)},
            "rederivations": done,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps({"machine": machine(), **run(args.events, args.seconds)}, indent=2))


if __name__ == "__main__":
    main()

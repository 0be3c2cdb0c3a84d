"""A producer flooding `callfloor serve` with events an hour late: the re-derivations of
the alert timeline they cause never stop the probes."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from serving import ServeProcess, ndjson, post_ndjson

CALLS = 10_000  # 20,000 events in the hour: seconds of re-derivation with the default rules


def _metric(base: str, line_start: str) -> float:
    text = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics")


def test_healthz_answers_while_late_events_are_rederived(tmp_path: Path) -> None:
    """/healthz answers within 1 s at every probe while an hour of events is re-derived
    after a late one (it waited for the whole re-derivation, 5-12 s, before)."""
    config = tmp_path / "callfloor.toml"
    config.write_text(
        '[sites.s]\ntimezone = "UTC"\n[queues.q]\nsite = "s"\nsl_threshold_s = 20\n[alerts]\n',
        encoding="utf-8",
    )
    start = time.time() - 3550
    events: list[dict[str, Any]] = [
        {"type": "agent_state", "ts": start - 10, "id": "ag", "site": "s", "agent": "a",
         "state": "available", "queues": ["q"]}
    ]  # fmt: skip
    for i in range(CALLS):
        t = start + i * 3500 / CALLS
        events.append(
            {"type": "call_queued", "ts": t, "id": f"q{i}", "site": "s", "call_id": f"c{i}",
             "queue": "q"}
        )  # fmt: skip
        events.append(
            {"type": "call_abandoned", "ts": t + 1, "id": f"a{i}", "site": "s",
             "call_id": f"c{i}", "queue": "q"}
        )  # fmt: skip
    events.sort(key=lambda e: float(e["ts"]))
    server = ServeProcess(config)
    done_key = 'callfloor_alert_rederivations_total{outcome="done"}'
    latencies: list[float] = []
    probing = True

    def probe() -> None:
        while probing:
            began = time.monotonic()
            urllib.request.urlopen(server.base + "/healthz", timeout=60).read()
            latencies.append(time.monotonic() - began)
            time.sleep(0.05)

    try:
        server.wait_ready()
        server.post_all(events)
        server.snapshot_after(len(events), timeout=120)
        prober = threading.Thread(target=probe)
        prober.start()
        try:
            before = _metric(server.base, done_key)
            late = {"type": "call_queued", "ts": start + 5, "id": "late", "site": "s",
                    "call_id": "late", "queue": "q"}  # fmt: skip
            post_ndjson(f"{server.base}/api/v1/events", ndjson([late]), time.monotonic() + 60)
            deadline = time.monotonic() + 90
            while _metric(server.base, done_key) <= before and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _metric(server.base, done_key) > before, "no re-derivation within 90 s"
        finally:
            probing = False
            prober.join()
    finally:
        server.stop()
    assert max(latencies) < 1.0, f"/healthz took {max(latencies):.2f} s"

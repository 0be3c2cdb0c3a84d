"""Acceptance: one `callfloor serve` process survives hostile bodies sent one after another.

Every answer stays under 1 MB and is JSON, /metrics stays under 5 MB and parses,
and the process stays under 1 GB of RSS. The queue cap is the bench floor's 500:
every queue adds about 8 KB (101 series) to /metrics, so the SPEC default of 2,000
queues allows about 16 MB.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
from prometheus_client.parser import text_string_to_metric_families
from serving import Served, request, serve

T = time.time() - 3600.0  # behind the watermark: applied in the round that receives them
MB = 1024 * 1024


def _nd(events: Iterator[dict[str, object]]) -> bytes:
    return b"".join(msgspec.json.encode(e) + b"\n" for e in events)


def _q(i: int, **extra: object) -> dict[str, object]:
    return {"type": "call_queued", "ts": T + i % 600, "call_id": f"c{i}", "queue": "q", **extra}


HOSTILE: list[tuple[str, bytes, str, set[int]]] = [
    ("deep array", b"[" * MB, "application/json", {400}),
    (
        "deep object line",
        _nd(iter([_q(1)])) + b'{"a":' * 300_000 + b"\n",
        "application/x-ndjson",
        {202},
    ),
    ("8M invalid lines", b"x\n" * (8 * MB), "application/x-ndjson", {400}),
    ("over max_body", b" " * (17 * MB), "application/x-ndjson", {413}),
    (
        "megabyte names",
        _nd(
            iter(
                [
                    _q(2, queue="q" * MB),
                    _q(3, site="s" * MB),
                    {"type": "agent_state", "ts": T, "agent": "a" * MB, "state": "available"},
                ]
            )
        ),
        "application/x-ndjson",
        {400},
    ),
    (
        "20,000 queues",
        _nd(_q(i, queue=f"queue-{i}", call_id=f"qq{i}") for i in range(20_000)),
        "application/x-ndjson",
        {202},
    ),
    (
        "300 sites",
        _nd(
            {
                "type": "agent_state",
                "ts": T,
                "agent": f"s{i}",
                "state": "available",
                "site": f"site-{i}",
            }
            for i in range(300)
        ),
        "application/x-ndjson",
        {202},
    ),
    (
        "60,000 agents",
        _nd(
            {
                "type": "agent_state",
                "ts": T + i % 600,
                "agent": f"agent-{i}",
                "state": "available",
                "queues": [f"queue-{i % 50}"],
            }
            for i in range(60_000)
        ),
        "application/x-ndjson",
        {202},
    ),
    (
        "extreme values",
        _nd(
            iter(
                [
                    _q(4, ts=1e308),
                    _q(5, ts=-1e308),
                    _q(6, ts="9999-12-31T23:59:59Z"),
                    _q(7, priority=2**70),
                    _q(8, queue=["nested", ["list"]]),
                    _q(9, call_id="\u0000\uffff\U0001f600"),
                    {
                        "type": "agent_state",
                        "ts": T,
                        "agent": "x",
                        "state": "available",
                        "queues": ["q"] * 100_000,
                    },
                ]
            )
        )
        + b'{"type":"call_queued","ts":1e400,"call_id":"c","queue":"q"}\n',
        "application/x-ndjson",
        {202, 400},
    ),
    ("random bytes", os.urandom(MB), "application/x-ndjson", {400}),
    ("form post", _nd(iter([_q(10)])), "text/plain", {415}),
    (
        "reused ids",
        _nd(_q(i, id="same", call_id=f"d{i}") for i in range(1000)),
        "application/x-ndjson",
        {202},
    ),
    ("empty", b"  \n ", "application/json", {400}),
]


def _check_answer(name: str, status: int, body: bytes, expected: set[int]) -> None:
    assert status in expected, (name, status, body[:300])
    assert len(body) < MB, (name, len(body))
    json.loads(body)  # every answer, errors included, is JSON


def _check_metrics(served: Served) -> None:
    status, body, _ = request(served.base + "/metrics")
    assert status == 200
    assert len(body) < 5 * MB, len(body)
    families = list(text_string_to_metric_families(body.decode()))
    assert any(f.name == "callfloor_events_rejected" for f in families)


def test_serve_survives_hostile_bodies_one_after_another(tmp_path: Path) -> None:
    """Each hostile body gets a bounded JSON answer; the process stays up, /metrics stays valid
    and small, RSS stays under 1 GB."""
    with serve(tmp_path, "") as served:  # the default limits
        for name, body, ctype, expected in HOSTILE:
            status, answer, _ = request(served.base + "/api/v1/events", body, ctype)
            _check_answer(name, status, answer, expected)
            assert served.proc.poll() is None, name
            assert request(served.base + "/healthz")[0] == 200, name
        _check_metrics(served)
        assert served.rss_bytes() < 1024 * MB
        _, doc = served.get_json("/api/v1/snapshot")
    counters = doc["counters"]
    assert counters["rejected"] > 8 * MB  # every invalid line counted
    assert len(doc["queues"]) == 2_000 and len(doc["agents"]) == 50_000
    assert len(doc["sites"]) == 200

"""Crash recovery with a durable store (file, and Redis: a real redis-server): `callfloor
serve` killed with SIGKILL and started again on the same port loses no acknowledged
event and ends where `callfloor replay` of everything sent ends (SPEC §9 durability).

A real `serve` subprocess with a durable ``[store] url`` receives a simulated trace
over HTTP; its tail lies seconds in the future, so some events are held ahead of the
clock when the process dies. Every 202 it answered was durable: after the restart the
sender resends the last part (as a sender that never saw the answers would), which is
recognised as a resend (answered as duplicates, counted nowhere in the document), then
the rest; the live snapshot equals the replay of the trace, each event once, at the
snapshot's ``as_of``, ``counters.late`` aside: the state the run would have reached
without the crash.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.redis_server import RedisServer
from serving import ServeProcess, get_json, replay_cli
from traces import DAY0, Event, assert_same_document, shifted, simulate, write_ndjson

from callfloor.store.file import SEGMENT_HEADER_SIZE

HOURS = 2.0
AHEAD_S = 12.0  # the trace ends this far after the moment it is shifted to


def _floor(tmp_path: Path, store: Path | str) -> tuple[Path, list[Event]]:
    trace = simulate(seed=7, agents=30, queues=4, sites=2, hours=HOURS, start=DAY0 + 8 * 3600.0)
    config = tmp_path / "callfloor.toml"
    url = store if isinstance(store, str) else f"file://{store}"
    config.write_text(
        trace.toml + f'\n[store]\nurl = "{url}"\ncheckpoint_every = "1s"\n',
        encoding="utf-8",
    )
    end = max(float(e["ts"]) for e in trace.events)
    return config, shifted(trace.events, round(time.time() + AHEAD_S - end, 3))


@pytest.fixture(params=["file", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """A file store's directory, or the URL of a real redis-server (stopped after)."""
    if request.param == "file":
        yield tmp_path / "state"
        return
    with RedisServer(tmp_path / "redis") as server:
        yield server.url


def test_sigkill_then_restart_loses_nothing_acknowledged(
    tmp_path: Path, store_url: Path | str
) -> None:
    """Events acknowledged before a SIGKILL (applied, or held ahead of the clock) are all
    there as soon as the restarted process is ready (a Redis store's partition is taken
    back at once, not when the dead run's lease expires), resent bodies are recognised
    and not counted, and the end state equals the replay of the trace."""
    config, events = _floor(tmp_path, store_url)
    now = time.time()
    third = len(events) // 3
    first, second = events[:third], events[third : 2 * third]
    held = [e for e in events if float(e["ts"]) > now + 4.0]
    rest = [e for e in events[2 * third :] if float(e["ts"]) <= now + 4.0]
    assert held and all(float(e["ts"]) <= now for e in first + second), "bad trace shape"

    server = ServeProcess(config)
    try:
        server.wait_ready()
        server.post_all(first + held)
        server.snapshot_after(len(first))
        # A checkpoint covers the first part and the held events; the log the second.
        time.sleep(1.5)
        server.post_all(second)
    finally:
        server.kill()  # no shutdown and no final checkpoint: a crash

    again = ServeProcess(config, server.port)  # the same port: the same member id
    try:
        again.wait_ready(timeout=20.0)
        # Held events whose time the restarted clock has passed by now are applied too
        # (a slow restart reaches some of them): count those the snapshot's as_of covers.
        snap = get_json(f"{again.base}/api/v1/snapshot")
        c = snap["counters"]
        applied = int(c["events"] + c["duplicates"] + c["rejected"])
        due = sum(1 for e in held if float(e["ts"]) <= float(snap["as_of"]))
        assert applied == len(first) + len(second) + due, "acknowledged events were lost"
        again.post_all(second, resent=True)  # resent: the sender never saw the answers
        again.post_all(rest)
        # Wait for the clock to pass the trace's end: every held event is applied.
        time.sleep(max(0.0, float(events[-1]["ts"]) - time.time() + 1.5))
        trace = first + held + second + rest
        live = again.snapshot_after(len(trace))
        with urllib.request.urlopen(f"{again.base}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        # Late events re-derive the alert timeline in slices once applied: wait for the
        # live list to catch up with the numbers.
        path = write_ndjson(tmp_path / "trace.ndjson", trace)
        deadline = time.monotonic() + 30.0
        while True:
            replayed = replay_cli(config, path, float(live["as_of"]))
            if _alerts(live) == _alerts(replayed) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
            live = again.snapshot_after(len(trace))
    finally:
        again.stop()
    assert live["counters"]["duplicates"] == 0
    assert f'callfloor_ingest_resent_events_total{{source="http"}} {len(second)}' in metrics
    assert_same_document(live, replayed, "the live snapshot after a crash and the replay")


def _alerts(doc: dict[str, Any]) -> list[str]:
    return sorted(json.dumps(a, sort_keys=True) for a in doc["alerts"])


def test_a_damaged_log_stops_the_start_naming_it(tmp_path: Path) -> None:
    """A log damaged before its end stops `serve` with exit code 2 and a line saying what
    to do, instead of serving a state with a hole in it."""
    config, events = _floor(tmp_path, tmp_path / "state")
    server = ServeProcess(config)
    try:
        server.wait_ready()
        server.post_all(events[:200])
        server.post_all(events[200:400])
    finally:
        server.kill()
    [segment] = (tmp_path / "state" / "log").glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[SEGMENT_HEADER_SIZE + 20] ^= 0xFF  # inside the first record, with another after it
    segment.write_bytes(bytes(data))
    again = ServeProcess(config)
    code = again.proc.wait(timeout=20)
    out = again.output()
    assert code == 2, out
    assert "callfloor: store:" in out and "damaged" in out, out

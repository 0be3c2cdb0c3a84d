"""SPEC §9 backfill: a day's events posted hours late to a running `callfloor serve` give
the same document as `callfloor replay` of those events at the snapshot's `as_of`.

A real `callfloor serve` subprocess on a free port (its clock is the wall clock) receives
a 14-hour simulated trace whose events all lie between 15 h and 1 h before now, as when a
day's queue_log is read at start-up; the live snapshot is then compared with a real
`callfloor replay FILE --config CFG --at <as_of>` (``counters.late`` aside).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traces import (
    DAY0,
    Document,
    Event,
    assert_same_document,
    require,
    shifted,
    simulate,
    split_feeds,
    write_ndjson,
)

BODY_EVENTS = 3000
HOURS = 14.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _post(url: str, body: bytes, deadline: float) -> dict[str, Any]:
    """POST one NDJSON body; on 503 (ingest queue full) wait Retry-After and retry."""
    while True:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/x-ndjson"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                reply: dict[str, Any] = json.loads(resp.read())
                require(resp.status == 202, f"ingest answered {resp.status}: {reply}")
                return reply
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(float(exc.headers.get("Retry-After", "1")))


class Server:
    """A running `callfloor serve` subprocess."""

    def __init__(self, config: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "callfloor", "serve", "--config", str(config)),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 10.0) -> None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else b""
                raise RuntimeError(f"callfloor serve exited early: {out.decode()}")
            try:
                if _get_json(f"{self.base}/readyz")["status"] == "ready":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"callfloor serve not ready within {timeout} s")

    def post_all(self, events: list[Event]) -> None:
        """POST ``events`` in order, in NDJSON bodies of BODY_EVENTS; none may be rejected."""
        deadline = time.monotonic() + 30.0
        for i in range(0, len(events), BODY_EVENTS):
            chunk = events[i : i + BODY_EVENTS]
            body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in chunk)
            reply = _post(f"{self.base}/api/v1/events", body.encode(), deadline)
            require(reply["accepted"] == len(chunk), f"not all accepted: {reply}")
            require(reply["rejected"] == [], f"rejected: {reply['rejected'][:3]}")

    def snapshot_after(self, count: int, timeout: float = 15.0) -> Document:
        """The live snapshot once ``count`` events were applied (or refused)."""
        started = time.monotonic()
        while True:
            doc: Document = _get_json(f"{self.base}/api/v1/snapshot")
            c = doc["counters"]
            done = c["events"] + c["duplicates"] + c["rejected"]
            if done >= count:
                require(c["rejected"] == 0, f"the service refused events: {c}")
                return doc
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"only {done} of {count} events applied: {c}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


@pytest.fixture
def floor(tmp_path: Path) -> tuple[Path, list[Event]]:
    """The default simulated floor's configuration and a 14-hour trace ending 1 h ago.

    The trace is simulated from a fixed start (06:00 UTC, so both sites are busy) and
    moved to now: the events are the same on every run, only their dates move.
    """
    trace = simulate(seed=5, agents=40, queues=6, sites=2, hours=HOURS, start=DAY0 + 6 * 3600.0)
    config = tmp_path / "callfloor.toml"
    config.write_text(trace.toml, encoding="utf-8")
    begin = time.time() - (HOURS + 1.0) * 3600.0
    events = shifted(trace.events, round(begin - trace.start, 3))
    return config, events


@pytest.fixture
def server(floor: tuple[Path, list[Event]]) -> Iterator[Server]:
    srv = Server(floor[0])
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _replay_cli(config: Path, events_file: Path, at: float) -> Document:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "callfloor", "replay", str(events_file)),
            *("--config", str(config), "--at", repr(at), "--output", "json"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    require(done.returncode == 0, f"callfloor replay failed: {done.stderr.decode()}")
    doc: Document = json.loads(done.stdout)
    return doc


def _backfill_then_compare(
    tmp_path: Path, server: Server, config: Path, events: list[Event], posted: list[Event]
) -> None:
    now = time.time()
    require(
        all(now - 15.5 * 3600 < float(e["ts"]) < now - 3500 for e in events),
        "the trace does not lie between 15 h and 1 h before now",
    )
    server.post_all(posted)
    live = server.snapshot_after(len(posted))
    require(live["counters"]["late"] > 0, "nothing was late: this is no backfill")
    as_of = float(live["as_of"])
    replayed = _replay_cli(config, write_ndjson(tmp_path / "trace.ndjson", events), as_of)
    require(replayed["as_of"] == as_of, f"replay as_of {replayed['as_of']} != {as_of}")
    assert_same_document(live, replayed, "backfilled live snapshot and replay")


def test_a_day_posted_hours_late_equals_the_replay(
    tmp_path: Path, server: Server, floor: tuple[Path, list[Event]]
) -> None:
    """A 14-hour trace posted in ts order, every event hours late, gives a live snapshot
    equal to `callfloor replay` at the snapshot's as_of, counters.late aside."""
    config, events = floor
    _backfill_then_compare(tmp_path, server, config, events, events)


def test_agent_feed_posted_before_the_call_feed_equals_the_replay(
    tmp_path: Path, server: Server, floor: tuple[Path, list[Event]]
) -> None:
    """The day's agent states posted first and its call events after them, all hours late,
    give a live snapshot equal to `callfloor replay` at its as_of, counters.late aside."""
    config, events = floor
    calls, agent_states = split_feeds(events)
    _backfill_then_compare(tmp_path, server, config, events, agent_states + calls)

"""Backfill into a live ``callfloor serve``: late events cost what in-order ones cost.

Run with ``.venv/bin/python -m bench.bench_backfill [--case day|oddeven|attack|all]``.

Each case starts a real ``callfloor serve`` (memory store, one process) on a free port
and posts NDJSON bodies of 1,000 events over HTTP, one body at a time (each answered
once its events are applied), while a prober asks ``GET /healthz`` every 20 ms on a new
connection, as an orchestrator's probe does. Reported: events/s of each half of the
posted events, their ratio, and the ``/healthz`` latency (p50, p99, max) while posting.

- ``day``: the simulated bench day (``bench/common.py``: 1,000 agents, 50 queues, 4
  sites, ~1 M events), moved so that its last event lies 2 minutes before now (all of
  it late to the live clock; ``[limits] max_lateness = "26h"`` so the first hours are
  not refused). Posted three times, each into a new process: in ``ts`` order (the
  halves are the first and second half); interleaved by call and agent (the events of
  every other call and agent, then the rest: the second half lands among the first in
  the windows, agents' answers and call ends, as issue 10's odd calls do); and
  interleaved event by event (the events at even positions, then those at odd
  positions: every event of the second half also lands inside its call's and its
  agent's history, re-folding them).
- ``oddeven``: issue 10's case: one queue, 3,000 calls in the last hour (queued,
  answered, ended); the even calls in order, then the odd calls.
- ``attack``: 30,000 never-answered calls of one queue sent 120 s late (bodies of
  1,000), after 3,000 ordinary calls of the last hour: seconds per body and ``/healthz``.

Target (issue 10): the late half at least 0.5x the in-order half; ``/healthz`` p99
<= 100 ms while a backfill runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import free_port, machine, simulated_day

ROOT = Path(__file__).resolve().parents[1]
BODY = 1000


# ----------------------------------------------------------------------------- process


@contextmanager
def serving(config: str) -> Iterator[int]:
    """``callfloor serve`` with ``config`` on a free port; its port."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    cfg = workdir / "callfloor.toml"
    cfg.write_text(config)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(cfg), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("callfloor serve did not become ready")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


class Prober:
    """``GET /healthz`` every ``every_s`` on a new connection; the latencies (s)."""

    def __init__(self, port: int, every_s: float = 0.02) -> None:
        self.port = port
        self.every_s = every_s
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status != 200:
                    self.failures += 1
            except OSError:
                self.failures += 1
            took = time.perf_counter() - started
            self.latencies.append(took)
            self._stop.wait(max(0.0, self.every_s - took))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return "no probe"
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        return (
            f"/healthz p50 {statistics.median(lat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {lat[-1] * 1000:.1f} ms ({len(lat)} probes, {self.failures} failed)"
        )

    def p99_ms(self) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000 if lat else float("nan")


def _bodies(events: list[dict[str, Any]]) -> list[bytes]:
    return [
        b"".join(
            json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events[i : i + BODY]
        )
        for i in range(0, len(events), BODY)
    ]


def post(
    port: int, bodies: list[bytes], budget_s: float | None = None
) -> tuple[int, float, list[float]]:
    """POST ``bodies`` in turn (retrying a 503); events posted, seconds, seconds per body.

    With ``budget_s``, stops after the body that passes it (a rate over what was posted)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    sent = 0
    per_body: list[float] = []
    for body in bodies:
        t0 = time.perf_counter()
        while True:
            conn.request("POST", "/api/v1/events", body, {"Content-Type": "application/x-ndjson"})
            resp = conn.getresponse()
            reply = resp.read()
            if resp.status == 503:
                time.sleep(float(resp.getheader("Retry-After") or "1"))
                continue
            if resp.status != 202:
                raise RuntimeError(f"ingest answered {resp.status}: {reply[:300]!r}")
            break
        per_body.append(time.perf_counter() - t0)
        sent += body.count(b"\n")
        if budget_s is not None and time.perf_counter() - started > budget_s:
            break
    conn.close()
    return sent, time.perf_counter() - started, per_body


# ----------------------------------------------------------------------------- cases


def _moved(events: list[dict[str, Any]], end: float) -> list[dict[str, Any]]:
    last = max(float(e["ts"]) for e in events)
    shift = round(end - last, 3)
    return [{**e, "ts": round(float(e["ts"]) + shift, 3)} for e in events]


def _halves(
    port: int, first: list[dict[str, Any]], second: list[dict[str, Any]], budget_s: float
) -> tuple[str, float, float]:
    n1, s1, _ = post(port, _bodies(first), budget_s)
    n2, s2, _ = post(port, _bodies(second), budget_s)
    r1, r2 = n1 / s1, n2 / s2
    line = (
        f"first half {n1:,} events in {s1:.1f} s = {r1:,.0f}/s; "
        f"second half {n2:,} in {s2:.1f} s = {r2:,.0f}/s; ratio {r2 / r1:.2f}"
    )
    return line, r1, r2


def _by_entity(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events of every other call and every other agent (by first appearance), then
    the rest, each in ``ts`` order."""
    index: dict[str, int] = {}
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    for e in events:
        key = str(e.get("call_id") or e.get("agent"))
        k = index.setdefault(key, len(index))
        (first if k % 2 == 0 else second).append(e)
    return first, second


def case_day(budget_s: float, agents: int, queues: int, only: list[str]) -> None:
    path, config = simulated_day(agents=agents, queues=queues)
    with path.open("rb") as fh:
        raw = [json.loads(line) for line in fh]
    events = _moved(raw, time.time() - 120.0)
    toml = config.read_text() + '\n[limits]\nmax_lateness = "26h"\n'
    print(f"day: {path.name}: {len(events):,} events, last one 2 min before now", flush=True)
    runs = {
        "in order": (events[: len(events) // 2], events[len(events) // 2 :]),
        "interleaved by call and agent": _by_entity(events),
        "interleaved event by event": (events[0::2], events[1::2]),
    }
    for name, (first, second) in runs.items():
        if only and name not in only:
            continue
        with serving(toml) as port, Prober(port) as probe:
            line, _, _ = _halves(port, first, second, budget_s)
        print(f"  {name}: {line}; {probe.summary()}", flush=True)


def _calls(n: int, start: float, span: float, seed: int = 3) -> list[list[dict[str, Any]]]:
    """``n`` answered calls of queue q1 over ``[start, start + span)``, events of each."""
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        t = round(start + span * i / n, 3)
        wait = round(rng.uniform(1, 60), 3)
        talk = round(rng.uniform(30, 300), 3)
        agent = f"a{i % 60}"
        cid = f"c{i}"
        base = {"site": "s1", "call_id": cid}
        calls.append(
            [
                {"type": "call_queued", "ts": t, **base, "queue": "q1", "channel": "voice"},
                {
                    "type": "call_answered",
                    "ts": round(t + wait, 3),
                    **base,
                    "agent": agent,
                    "queue": "q1",
                },
                {"type": "call_ended", "ts": round(t + wait + talk, 3), **base, "agent": agent},
            ]
        )
    return calls


ONE_QUEUE = """
[sites.s1]
timezone = "UTC"

[queues.q1]
site = "s1"
"""


def _sorted(calls: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return sorted((e for c in calls for e in c), key=lambda e: float(e["ts"]))


def case_oddeven(budget_s: float) -> None:
    now = time.time()
    calls = _calls(3000, now - 3600.0, 3000.0)
    even, odd = _sorted(calls[0::2]), _sorted(calls[1::2])
    with serving(ONE_QUEUE) as port, Prober(port) as probe:
        line, _, _ = _halves(port, even, odd, budget_s)
    print(
        f"oddeven: 3,000 calls of one queue in the last hour: {line}; {probe.summary()}", flush=True
    )


def case_attack(budget_s: float) -> None:
    now = time.time()
    calls = _sorted(_calls(3000, now - 3600.0, 3000.0))
    with serving(ONE_QUEUE) as port:
        post(port, _bodies(calls))
        late_at = time.time() - 120.0
        attack = [
            {
                "type": "call_queued",
                "ts": round(late_at - 60.0 + 60.0 * i / 30_000, 3),
                "site": "s1",
                "call_id": f"x{i}",
                "queue": "q1",
                "channel": "voice",
            }
            for i in range(30_000)
        ]
        with Prober(port) as probe:
            n, seconds, per_body = post(port, _bodies(attack), budget_s)
    print(
        f"attack: {n:,} never-answered calls 120 s late after 3,000 calls: "
        f"{n / seconds:,.0f} events/s, median {statistics.median(per_body):.2f} s per "
        f"1,000-event body (max {max(per_body):.2f}); {probe.summary()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=("day", "oddeven", "attack", "all"), default="all")
    parser.add_argument(
        "--budget",
        type=float,
        default=600.0,
        help="seconds per half at most (a rate over what was posted)",
    )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        help="day runs to do (default all): 'in order', 'interleaved by call and agent', "
        "'interleaved event by event'",
    )
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    if args.case in ("oddeven", "all"):
        case_oddeven(args.budget)
    if args.case in ("attack", "all"):
        case_attack(args.budget)
    if args.case in ("day", "all"):
        case_day(args.budget, args.agents, args.queues, args.run)


if __name__ == "__main__":
    main()

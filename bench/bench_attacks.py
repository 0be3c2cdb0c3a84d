"""RSS of ``callfloor serve`` under three writer attacks, with the limits and without.

Each attack runs against a fresh ``callfloor serve`` (memory store, loopback, HTTP
ingest) started as its own process; the RSS and peak RSS (``VmRSS``, ``VmHWM``) are read
from ``/proc`` before and after. "without" sets the new limit out of reach, as the
service behaved before it existed.

1. **1,000,000 waiting calls**: ``call_queued`` for a million new calls, stamped now,
   in bodies of 20,000 (``[limits] max_open_calls``, default 100,000).
2. **1,000,000 events stamped now + 290 s** (valid: the skew allowed is 300 s), then
   one body stamped now from another producer: is it taken, or refused with a 503?
   (``[limits] max_future_events``, default 10,000 per source).
3. **200 junk sites, then a legitimate agent**: one writer logs 200 invented agents in,
   each on its own site (``max_sites`` 200); a legitimate agent on a new site is refused
   (``too_many_sites``) until the junk is forgotten. With ``max_lateness`` and
   ``forget_after`` at their minimum (60 s) the benchmark waits for it; by default it is
   7 days (``[limits] forget_after``).

    python -m bench.bench_attacks [--only 1|2|3] [--limits on|off]
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
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.common import ROOT, free_port, machine

BODY = 20_000
NDJSON = {"Content-Type": "application/x-ndjson"}


def _rss(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of a process in MiB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


class Serve:
    """``callfloor serve`` with a [limits] table, on a free port, until closed."""

    def __init__(self, limits: dict[str, Any]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-attack-"))
        self.port = free_port()
        cfg = self.dir / "callfloor.toml"
        lines = [f"{k} = {json.dumps(v)}" for k, v in limits.items()]
        port = ("--port", str(self.port))
        cfg.write_text("[limits]\n" + "\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [*(sys.executable, "-m", "callfloor", "serve"), *("--config", str(cfg)), *port],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(600):
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("callfloor serve did not get ready")

    def get(self, path: str) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")

    def post(self, events: list[dict[str, Any]]) -> tuple[int, Any]:
        body = b"".join(msgspec.json.encode(e) + b"\n" for e in events)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("POST", "/api/v1/events", body=body, headers=NDJSON)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")

    def rss(self) -> tuple[float, float]:
        return _rss(self.proc.pid)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def _flood(serve: Serve, make: Any, n: int) -> dict[str, int]:
    """Post n events made by make(i, now) in bodies of BODY, each body stamped when it is
    made; statuses and outcomes counted."""
    out = {"accepted": 0, "refused": 0, "503": 0}
    for start in range(0, n, BODY):
        now = time.time()
        status, answer = serve.post([make(i, now) for i in range(start, min(n, start + BODY))])
        if status == 503:
            out["503"] += 1
            continue
        out["accepted"] += answer["accepted"]
        out["refused"] += answer["rejected_total"]
    return out


def waiting_calls(limits: dict[str, Any]) -> dict[str, Any]:
    serve = Serve(limits)
    try:
        before = serve.rss()[0]

        def make(i: int, now: float) -> dict[str, Any]:
            # Stamped now, like a real feed: a second behind the watermark at most.
            ts = now - 2
            return {"type": "call_queued", "ts": ts, "call_id": f"c{i}", "queue": f"q{i % 50}"}

        started = time.perf_counter()
        flood = _flood(serve, make, 1_000_000)
        elapsed = time.perf_counter() - started
        rss, peak = serve.rss()
        return {"before_mib": before, "rss_mib": rss, "peak_mib": peak, "s": elapsed, **flood}
    finally:
        serve.close()


def future_events(limits: dict[str, Any]) -> dict[str, Any]:
    serve = Serve(limits)
    try:
        before = serve.rss()[0]

        def make(i: int, now: float) -> dict[str, Any]:
            return {"type": "call_queued", "ts": now + 290, "call_id": f"f{i}", "queue": "q"}

        flood = _flood(serve, make, 1_000_000)
        now = time.time() - 2
        status, _ = serve.post(
            [
                {"type": "call_queued", "ts": now, "call_id": f"n{i}", "queue": "q"}
                for i in range(10)
            ]
        )
        rss, peak = serve.rss()
        return {
            "before_mib": before,
            "rss_mib": rss,
            "peak_mib": peak,
            "next_body": status,
            **flood,
        }
    finally:
        serve.close()


def junk_sites(limits: dict[str, Any], wait_s: float) -> dict[str, Any]:
    serve = Serve(limits)
    try:
        before = serve.rss()[0]
        now = time.time() - 2
        junk = [
            {
                "type": "agent_state",
                "ts": now,
                "agent": f"junk{i}",
                "state": "available",
                "site": f"junk{i}",
            }
            for i in range(200)
        ]
        serve.post(junk)
        started = time.monotonic()
        taken_after = None
        first = None
        while time.monotonic() - started < wait_s:
            legit = {
                "type": "agent_state",
                "ts": time.time() - 2,
                "agent": "alice",
                "state": "available",
                "site": "lon",
            }
            status, answer = serve.post([legit])
            if first is None:
                first = answer["rejected"][0]["reason"] if answer["rejected"] else "taken"
            if status == 202 and answer["accepted"] == 1:
                taken_after = time.monotonic() - started
                break
            time.sleep(2)
        rss, peak = serve.rss()
        return {
            "before_mib": before,
            "rss_mib": rss,
            "peak_mib": peak,
            "first_answer": first,
            "taken_after_s": taken_after,
        }
    finally:
        serve.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", type=int, choices=(1, 2, 3), help="one attack")
    parser.add_argument("--limits", choices=("on", "off"), help="only with or without")
    args = parser.parse_args()
    print(machine())
    off = 100_000_000
    runs: list[tuple[int, str, Any]] = [
        (1, "waiting calls, max_open_calls 100,000 (default)", lambda: waiting_calls({})),
        (1, "waiting calls, without a cap", lambda: waiting_calls({"max_open_calls": off})),
        (2, "future events, max_future_events 10,000 (default)", lambda: future_events({})),
        (
            2,
            "future events, without the allowance",
            lambda: future_events({"max_future_events": off}),
        ),
        (
            3,
            "junk sites, forget_after 60 s",
            lambda: junk_sites({"max_lateness": "60s", "forget_after": "60s"}, 400),
        ),
        (
            3,
            "junk sites, never forgotten",
            lambda: junk_sites({"max_lateness": "60s", "forget_after": "3650d"}, 240),
        ),
    ]
    for k, (number, name, run) in enumerate(runs):
        if args.only is not None and number != args.only:
            continue
        if args.limits is not None and (k % 2 == 0) != (args.limits == "on"):
            continue
        result = run()
        shown = {k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}
        print(f"{name}: {shown}", flush=True)


if __name__ == "__main__":
    main()

"""Benchmark: alert notification queued in the outbox -> received by a webhook, p50/p99,
with a hanging sink beside it.

Run with ``.venv/bin/python -m bench.bench_alert_sinks``. Two processes: this one runs
the :class:`~callfloor.sinks.alerts.outbox.Outbox` with two webhook sinks, ``fast``
(the ``json`` template, HMAC-signed) and ``stuck`` (a receiver that never answers:
10 s timeout, retried), and submits notifications at a steady rate; a receiver process
(this script with ``--receive``: aiohttp on a free loopback port) records when each
``fast`` request arrives (``time.monotonic()``, the same clock across processes on Linux)
and never answers ``stuck``. The latency is arrival - submit. A run without ``stuck`` is
the baseline. Two loads: a steady rate (``--rate``, 100/s by default: a busy floor's
worst hour has far fewer alerts), and a burst of ``--burst`` notifications submitted at
once (a floor-wide incident). One notification delivered before the measured ones
opens the connection (warm-up, not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import machine, median

if TYPE_CHECKING:
    from callfloor.alerts.notification import Notification

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- receiver


def receive() -> None:
    """The receiver process: serves until stdin closes, then prints arrivals as JSON."""
    from aiohttp import web

    arrivals: dict[str, float] = {}

    async def fast(request: web.Request) -> web.Response:
        await request.read()
        arrivals[request.headers["Idempotency-Key"]] = time.monotonic()
        return web.Response(text="ok")

    async def stuck(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/fast", fast)
        app.router.add_post("/stuck", stuck)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(json.dumps(arrivals), flush=True)
        await runner.cleanup()

    asyncio.run(main())


# ----------------------------------------------------------------------------- the run


def _notification(k: int) -> Notification:
    from callfloor.alerts.notification import Notification, Transition

    now = time.time()
    return Notification(
        key=f"fp{k}:firing:{k}.0",
        fingerprint=f"fp{k}",
        rule="sl_low",
        scope_kind="queue",
        scope=f"q{k % 50}",
        site="bench",
        severity="warning",
        transition=Transition.FIRING,
        state="firing",
        since=now - 120,
        fired_at=now,
        ended_at=None,
        value=0.71,
        summary="Service level 71% on the bench queue",
        description="The 15-minute service level is below its target.",
        labels={},
        emitted_at=now,
    )


async def _submit(
    port: int, rate: float | None, count: int, with_stuck: bool
) -> tuple[dict[str, float], dict[str, int]]:
    from callfloor.sinks.alerts import Outbox, create_sinks, parse_sinks

    base = f"http://127.0.0.1:{port}"
    tables: dict[str, object] = {
        "fast": {"kind": "webhook", "url": f"{base}/fast", "secret": "bench", "max_queue": 10000}
    }
    if with_stuck:
        tables["stuck"] = {"kind": "webhook", "url": f"{base}/stuck", "timeout": "10s"}
    outbox = Outbox(create_sinks(parse_sinks(tables)))
    await outbox.start()
    outbox.submit(_notification(-1))  # warm-up: opens the connection
    while outbox.stats.sent_total["fast"] < 1:
        await asyncio.sleep(0.005)
    submitted: dict[str, float] = {}
    start = time.monotonic()
    for k in range(count):
        if rate is not None:
            wait = start + k / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        n = _notification(k)
        submitted[n.key] = time.monotonic()
        outbox.submit(n)
    drained = time.monotonic()
    deadline = drained + 30
    while outbox.stats.queue_depth["fast"] and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    drain_ms = (time.monotonic() - drained) * 1000
    await asyncio.sleep(0.2)
    dropped = outbox.stats.dropped_total
    stats = {
        "sent": outbox.stats.sent_total["fast"] - 1,
        "dropped": sum(n for (sink, _), n in dropped.items() if sink == "fast"),
        "drain_ms": round(drain_ms),
        "stuck_retries": outbox.stats.retries_total.get("stuck", 0),
        "stuck_queued": outbox.stats.queue_depth.get("stuck", 0),
        "stuck_dropped": sum(n for (sink, _), n in dropped.items() if sink == "stuck"),
    }
    await outbox.close()
    return submitted, stats


def run_once(
    rate: float | None, count: int, with_stuck: bool
) -> tuple[list[float], dict[str, int]]:
    """Latencies (s) of one run (the notifications received) and the outbox's counts."""
    rx = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_alert_sinks", "--receive"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert rx.stdin is not None and rx.stdout is not None
    try:
        port = int(rx.stdout.readline())
        submitted, stats = asyncio.run(_submit(port, rate, count, with_stuck))
        rx.stdin.close()
        arrivals: dict[str, float] = json.loads(rx.stdout.readline())
    finally:
        rx.kill()
        rx.wait()
    latencies = [arrivals[key] - at for key, at in submitted.items() if key in arrivals]
    stats["missing"] = len(submitted) - len(latencies)
    return latencies, stats


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--receive", action="store_true")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.receive:
        receive()
        return
    print(machine())
    loads: list[tuple[str, float | None, int]] = [
        (f"steady {args.rate:g}/s", args.rate, int(args.rate * args.seconds)),
        (f"burst of {args.burst}", None, args.burst),
    ]
    for label, rate, count in loads:
        for with_stuck in (False, True):
            side = "with" if with_stuck else "without"
            p50s: list[float] = []
            p99s: list[float] = []
            for _ in range(args.runs):
                lat, stats = run_once(rate, count, with_stuck)
                p50s.append(_pct(lat, 0.5) * 1000)
                p99s.append(_pct(lat, 0.99) * 1000)
                print(
                    f"run ({label}, {side} a hanging sink): {len(lat)} received, "
                    f"p50 {p50s[-1]:.2f} ms, p99 {p99s[-1]:.2f} ms; {stats}",
                    flush=True,
                )
            print(
                f"{label}, {side} a hanging sink: median p50 {median(p50s):.2f} ms, "
                f"median p99 {median(p99s):.2f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()

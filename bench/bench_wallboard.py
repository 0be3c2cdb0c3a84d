"""Benchmark: wallboard pushes on the bench floor, and event -> number in a real browser.

Run with ``.venv/bin/python -m bench.bench_wallboard``. Targets (docs/benchmarks.md):
the service clock passing an event's time -> the number changed in the browser, p99
<= 1 s (moonshot <= 250 ms), the watermark's hold before it reported separately; 100
wallboard clients on a 500-queue, 10,000-agent floor at 2,000 events/s: callfloor CPU
for the pushes under 1/4 core, update latency; bytes per push.

Two parts:

- **Floor**: the ``/metrics`` bench floor (``bench.bench_metrics.build_floor``: 500
  queues on 5 sites, 10,000 agents) in a real :class:`FloorService` in this process,
  its clock running on from the floor's last event. A load process posts 2,000 events/s
  stamped now (calls queued, answered, ended on the floor's queues) plus a marker call
  queued every 0.5 s on a queue of its own; a client process opens 100 wallboard streams
  (20 per site) and records when each marker shows (the marker queue's ``waiting``
  count). CPU is this process's ``process_time`` over 20 s, with and without the 100
  clients at the same event rate: the difference is what the pushes cost.
- **Browser**: ``callfloor serve`` on a small floor (8 queues), the wallboard open in
  headless Chromium; 40 times, a call is queued stamped now and a MutationObserver in
  the page records when the tile's waiting count changed.

Latency = (when the number changed) - (the event's ts + the 1 s watermark delay): the
time from the service clock passing the event's time to the number on the screen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.bench_metrics import SITES, build_floor
from bench.common import free_port, machine

WATERMARK_S = 1.0
MARKER = "zz-marker"
MARKER_SITE = SITES[0][0]


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# ----------------------------------------------------------------------------- load


def load(base: str, offset: float, rate: float, seconds: float, marker_queue: str) -> None:
    """The load process: ``rate`` events/s stamped with the floor's now, markers each 0.5 s."""
    rng = random.Random(3)
    pending: list[tuple[float, dict[str, Any]]] = []
    start = time.time()
    n = 0
    marker = 0
    next_marker = start + 1.0
    markers: list[float] = []
    posted = 0
    while time.time() - start < seconds:
        wall = time.time()
        t = wall + offset
        # Three events per call: queued now, answered a few seconds later, ended later.
        due = int((wall - start) * rate / 3) - n
        for _ in range(max(0, due)):
            n += 1
            q = f"q{rng.randrange(500):04d}"
            call = f"b{n}"
            pending.append((t, {"type": "call_queued", "call_id": call, "queue": q}))
            pending.append(
                (
                    t + rng.uniform(1, 25),
                    {
                        "type": "call_answered",
                        "call_id": call,
                        "queue": q,
                        "agent": f"x{rng.randrange(3000)}",
                    },
                )
            )
            pending.append(
                (t + rng.uniform(3, 6), {"type": "call_ended", "call_id": call, "queue": q})
            )
        body = []
        keep = []
        for ts, event in pending:
            if ts <= t:
                body.append({**event, "ts": round(ts, 6)})
            else:
                keep.append((ts, event))
        pending = keep
        if wall >= next_marker:
            marker += 1
            body.append(
                {
                    "type": "call_queued",
                    "ts": round(t, 6),
                    "call_id": f"m{marker}",
                    "queue": marker_queue,
                    "site": MARKER_SITE,
                }
            )
            markers.append(t)
            next_marker += 0.5
        posted += len(body)
        if body:
            data = "".join(json.dumps(e) + "\n" for e in body).encode()
            req = urllib.request.Request(
                f"{base}/api/v1/events",
                data=data,
                headers={"Content-Type": "application/x-ndjson"},
            )
            with urllib.request.urlopen(req, timeout=30) as answer:
                answer.read()
        time.sleep(0.05)
    print(json.dumps({"markers": markers, "rate": posted / (time.time() - start)}), flush=True)


# ----------------------------------------------------------------------------- clients


async def _clients(
    base: str, n: int, seconds: float, offset: float, marker_queue: str
) -> dict[str, Any]:
    import aiohttp

    seen: list[tuple[int, float]] = []  # (waiting on the marker queue, wall time), first seen
    pushes = [0]
    nbytes = [0]

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        site = SITES[i % len(SITES)][0]
        watch = site == MARKER_SITE
        best = 0
        async with session.get(f"{base}/api/v1/wallboard/stream?site={site}") as resp:
            async for raw in resp.content:
                if not raw.startswith(b"data: "):
                    continue
                pushes[0] += 1
                nbytes[0] += len(raw)
                if not watch:
                    continue
                view = json.loads(raw[6:])["view"]
                if view is None:
                    continue
                for tile in view["tiles"]:
                    if tile["name"] == marker_queue and tile["waiting"] > best:
                        # Every marker this push shows for the first time, for this client.
                        at = time.time() + offset
                        seen.extend((k, at) for k in range(best + 1, tile["waiting"] + 1))
                        best = tile["waiting"]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [asyncio.create_task(one(i, session)) for i in range(n)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"seen": seen, "pushes": pushes[0], "bytes": nbytes[0]}


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.bench_wallboard", *args], stdout=subprocess.PIPE
    )


# ----------------------------------------------------------------------------- the floor


class _Server:
    """The service on the bench floor, running in a thread with its own loop."""

    def __init__(self) -> None:
        from callfloor.service import FloorService

        self.proc = build_floor()
        floor_end = self.proc.clock
        wall0 = time.time()
        self.offset = floor_end + 1.0 - wall0

        def clock() -> float:
            return time.time() + self.offset

        self.service = FloorService(
            self.proc.config, clock=clock, host="127.0.0.1", port=0, processor=self.proc
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.service.started.wait(), self.loop).result(60)
        self.base = f"http://127.0.0.1:{self.service.bound_port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self.service.run())
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self.task)

    def hub(self) -> Any:
        return HUBS[0] if HUBS else None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


HUBS: list[Any] = []


def _record_hubs() -> None:
    """Keep every BoardHub made in this process (the bench reads its build counters)."""
    from callfloor.web import boards

    made = boards.BoardHub.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        HUBS.append(self)

    boards.BoardHub.__init__ = init  # type: ignore[method-assign]


def floor_part(seconds: float, clients: int, rate: float) -> dict[str, Any]:
    """CPU with and without the clients at the same event rate; marker latencies."""
    _record_hubs()
    server = _Server()
    print(f"floor: {len(server.proc.queues)} queues, {len(server.proc.agents)} agents")
    out: dict[str, Any] = {}
    for phase, (label, n) in enumerate((("no clients", 0), (f"{clients} clients", clients))):
        marker = f"{MARKER}{phase}"
        loader = _spawn("--load", server.base, str(server.offset), str(rate), str(seconds), marker)
        watcher = _spawn("--clients", server.base, str(n), str(seconds), str(server.offset), marker)
        hub = server.hub()
        before = (hub.stats.build_seconds, hub.stats.builds) if hub else (0.0, 0)
        cpu, wall = time.process_time(), time.perf_counter()
        load_out, _ = loader.communicate()
        seen_out, _ = watcher.communicate()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        hub = server.hub()
        builds = (hub.stats.builds - before[1]) if hub else 0
        build_s = (hub.stats.build_seconds - before[0]) if hub else 0.0
        loaded = json.loads(load_out)
        markers = loaded["markers"]
        seen = json.loads(seen_out)
        latencies = []
        for waiting, at in seen["seen"]:
            if waiting - 1 < len(markers):
                latencies.append(at - (markers[waiting - 1] + WATERMARK_S))
        # A push that shows k markers at once carries the earlier ones too: each counts.
        out[label] = {
            "events_per_s": loaded["rate"],
            "cpu_share": cpu / wall,
            "builds": builds,
            "build_ms": 1000 * build_s / builds if builds else None,
            "build_share": build_s / wall,
            "pushes": seen["pushes"],
            "bytes_per_push": seen["bytes"] / seen["pushes"] if seen["pushes"] else None,
            "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
            "p99_ms": 1000 * _pct(latencies, 99) if latencies else None,
            "samples": len(latencies),
        }
        print(label, json.dumps(out[label]), flush=True)
    server.stop()
    return out


# ----------------------------------------------------------------------------- the browser

_OBSERVE = """() => {
  window.__changes = [];
  const node = document.querySelector('.tile[data-queue="q0"] .waiting');
  new MutationObserver(() => window.__changes.push([Date.now() / 1000, node.textContent]))
    .observe(node, {childList: true, characterData: true, subtree: true});
}"""


def _post(req: urllib.request.Request) -> None:
    with urllib.request.urlopen(req, timeout=10) as answer:
        answer.read()


async def browser_part(samples: int) -> dict[str, Any]:
    """Event stamped now -> the tile's number changed in Chromium, ``samples`` times."""
    from playwright.async_api import async_playwright

    tmp = Path(tempfile.mkdtemp())
    cfg = tmp / "callfloor.toml"
    cfg.write_text(
        '[sites.sh]\ntimezone = "Asia/Shanghai"\n'
        + "".join(f'[queues.q{i}]\nsite = "sh"\n' for i in range(8))
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "callfloor", "serve", "--config", str(cfg), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    time.sleep(2.0)
    latencies: list[float] = []
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(tmp / "profile"),
                executable_path="/usr/bin/chromium",
                headless=True,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
                viewport={"width": 1920, "height": 1080},
            )
            page = await context.new_page()
            await page.goto(f"{base}/wallboard?site=sh")
            await page.wait_for_selector('.tile[data-queue="q0"] .waiting')
            await page.evaluate(_OBSERVE)
            for k in range(1, samples + 1):
                await asyncio.sleep(random.uniform(0.3, 1.3))  # any phase of the tick
                ts = time.time()
                event = {"type": "call_queued", "ts": ts, "call_id": f"c{k}", "queue": "q0"}
                req = urllib.request.Request(
                    f"{base}/api/v1/events",
                    data=json.dumps(event).encode(),
                    headers={"Content-Type": "application/json"},
                )
                await asyncio.to_thread(_post, req)
                await page.wait_for_function(
                    "(k) => window.__changes.some(c => c[1] === k)", arg=str(k), timeout=10_000
                )
                changes = await page.evaluate("window.__changes")
                at = next(c[0] for c in changes if c[1] == str(k))
                latencies.append(at - (ts + WATERMARK_S))
            await context.close()
    finally:
        proc.terminate()
        proc.wait(10)
    result = {
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * _pct(latencies, 99),
        "max_ms": 1000 * max(latencies),
        "samples": len(latencies),
    }
    print("browser", json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", nargs=5)
    parser.add_argument("--clients", nargs=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--skip-floor", action="store_true")
    args = parser.parse_args()
    if args.load:
        base, offset, rate, seconds, marker = args.load
        load(base, float(offset), float(rate), float(seconds), marker)
        return
    if args.clients:
        base, n, seconds, offset, marker = args.clients
        result = asyncio.run(_clients(base, int(n), float(seconds), float(offset), marker))
        print(json.dumps(result))
        return
    print(f"machine: {machine()}")
    asyncio.run(browser_part(args.samples))
    if not args.skip_floor:
        floor_part(args.seconds, 100, args.rate)


if __name__ == "__main__":
    main()

"""Benchmark: reads of the live service on the bench floor (500 queues, 10,000 agents).

Run with ``.venv/bin/python -m bench.bench_reads``. Targets: one queue read under
1 ms; 100 readers of ``/api/v1/snapshot`` per second under 25 % of one core.

The floor is ``bench.bench_metrics.build_floor`` (two hours of synthetic traffic)
inside a real :class:`FloorService` whose clock continues from the floor's last
event, serving on a free port. Load comes from a separate client process (this
script with ``--client``), so the server's CPU time (``time.process_time`` of this
process) is the service's alone. Measured:

- a queue (and an agent) rendered on its own, in process, and over HTTP;
- the document: build and encode (what a tick costs readers at most once);
- server CPU with no readers (ticks only) and with 100 snapshot readers a second;
- ``/healthz`` latency while a 16 MB body (240,000 events) is posted, decoded and
  applied.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import msgspec

from bench.bench_metrics import build_floor
from bench.common import machine
from callfloor.processors.views import NamePolicy


def _ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:.3f} ms "
        f"(min {min(values) * 1000:.3f}, max {max(values) * 1000:.3f}, n={len(values)})"
    )


# ----------------------------------------------------------------------------- the client


async def _client(base: str, mode: str, seconds: float, rate: float) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(path: str) -> None:
            started = time.perf_counter()
            async with http.get(base + path) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append(time.perf_counter() - started)

        if mode == "queue":
            for i in range(int(rate)):
                await one(f"/api/v1/queues/q{i % 500:04d}")
        else:
            path = "/api/v1/snapshot" if mode == "snapshot" else "/healthz"
            loop = asyncio.get_running_loop()
            start = loop.time()
            tasks = []
            n = 0
            while loop.time() - start < seconds:
                tasks.append(asyncio.create_task(one(path)))
                n += 1
                await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            await asyncio.gather(*tasks)
    return {"latencies": latencies, "statuses": statuses}


def _run_client(base: str, mode: str, seconds: float = 0.0, rate: float = 0.0) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_reads",
            "--client",
            base,
            mode,
            str(seconds),
            str(rate),
        ],
        capture_output=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# ----------------------------------------------------------------------------- the server


class _Server:
    """The service on the bench floor, running in a thread with its own loop."""

    def __init__(self, queues: int, agents: int) -> None:
        from callfloor.service import FloorService

        started = time.perf_counter()
        self.proc = build_floor(queues, agents)
        self.build_s = time.perf_counter() - started
        floor_end = self.proc.clock
        wall0 = time.time()

        def clock() -> float:  # the floor's time continues from its last event
            return floor_end + 1.0 + (time.time() - wall0)

        self.clock = clock
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

    def cpu_during(self, work: Any) -> tuple[float, float, Any]:
        """(CPU seconds of this process, wall seconds, result) while ``work()`` runs."""
        cpu, wall = time.process_time(), time.perf_counter()
        result = work()
        return time.process_time() - cpu, time.perf_counter() - wall, result

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


def _post_large(base: str, clock: Any) -> tuple[int, float, int]:
    import urllib.error
    import urllib.request

    from bench.bench_metrics import SITES

    # Calls queued across the 500 queues just ahead of the watermark (live traffic):
    # decoded off the loop, held, then applied by the next ticks in slices.
    t = clock()
    lines = []
    size = 0
    i = 0
    while True:
        q = i % 500
        line = (
            b'{"type":"call_queued","ts":%.3f,"call_id":"big-%d","queue":"q%04d","site":"%s"}\n'
            % (t + i * 1e-5, i, q, SITES[q % len(SITES)][0].encode())
        )
        if size + len(line) > 16 * 1024 * 1024:
            break
        lines.append(line)
        size += len(line)
        i += 1
    body = b"".join(lines)
    req = urllib.request.Request(
        base + "/api/v1/events", data=body, headers={"Content-Type": "application/x-ndjson"}
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()
            return resp.status, time.perf_counter() - started, len(lines)
    except urllib.error.HTTPError as err:
        print(f"POST failed: {err.code} {err.read()[:300]!r}")
        return err.code, time.perf_counter() - started, len(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the floor, serve it, measure the reads, print a report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queues", type=int, default=500)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="each load window")
    parser.add_argument("--client", nargs=4, metavar=("URL", "MODE", "SECONDS", "RATE"))
    args = parser.parse_args(argv)
    if args.client:
        base, mode, seconds, rate = args.client
        print(json.dumps(asyncio.run(_client(base, mode, float(seconds), float(rate)))))
        return 0

    print(f"machine: {machine()}")
    server = _Server(args.queues, args.agents)
    service = server.service
    view = service.view
    print(
        f"floor: {len(view.queue_names())} queues, {len(view.agent_names())} agents, "
        f"{view.counters().events} events (built in {server.build_s:.1f} s)"
    )

    # In process: one entity rendered on its own (what the route does besides HTTP).
    names = view.queue_names()
    agents = view.agent_names()
    queue_reads, agent_reads = [], []
    for i in range(500):
        t = time.perf_counter()
        q = view.queue(names[i % len(names)])
        msgspec.json.encode(q)
        queue_reads.append(time.perf_counter() - t)
        t = time.perf_counter()
        msgspec.json.encode(view.agent_detail(agents[i * 17 % len(agents)], names=NamePolicy.SHOW))
        agent_reads.append(time.perf_counter() - t)
    print(f"one queue, view.queue + encode, in process: {_ms(queue_reads)} (target < 1 ms)")
    print(f"one agent, view.agent_detail + encode, in process: {_ms(agent_reads)}")
    docs = []
    for _ in range(5):
        t = time.perf_counter()
        msgspec.json.encode(view.document())
        docs.append(time.perf_counter() - t)
    print(f"whole document, build + encode: {_ms(docs)}")

    http_q = _run_client(server.base, "queue", 0, 500)
    print(f"one queue over HTTP (client-side, sequential): {_ms(http_q['latencies'])}")

    seconds = args.seconds
    idle_cpu, idle_wall, _ = server.cpu_during(lambda: time.sleep(seconds))
    load_cpu, load_wall, load = server.cpu_during(
        lambda: _run_client(server.base, "snapshot", seconds, 100)
    )
    idle = idle_cpu / idle_wall
    loaded = load_cpu / load_wall
    n = len(load["latencies"])
    print(
        f"server CPU, ticks only: {idle * 100:.1f} % of one core; with 100 snapshot "
        f"readers/s ({n} reads in {load_wall:.1f} s, statuses {load['statuses']}): "
        f"{loaded * 100:.1f} % (readers' share {(loaded - idle) * 100:.1f} %, target < 25 %); "
        f"snapshot latency {_ms(load['latencies'])}"
    )

    # /healthz while a 16 MB body is posted, decoded (in a worker thread) and applied.
    before = _run_client(server.base, "healthz", 3, 20)
    result: dict[str, Any] = {}

    def post() -> None:
        result["post"] = _post_large(server.base, server.clock)

    poster = threading.Thread(target=post)
    poster.start()
    during = _run_client(server.base, "healthz", 6, 20)
    poster.join()
    status, took, len_events = result["post"]
    print(f"/healthz at 20/s, quiet: {_ms(before['latencies'])}")
    print(
        f"/healthz at 20/s while a 16 MB NDJSON body ({len_events} events) is ingested "
        f"(answer {status} in {took:.2f} s; held, then applied by the ticks): "
        f"{_ms(during['latencies'])}"
    )
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the live floor in Redis on the bench floor (500 queues, 10,000 agents).

Run with ``.venv/bin/python -m bench.bench_redis_floor``. What is measured, with a
redis-server on a free loopback port (deploy/redis.conf: appendfsync always) and the
service (:class:`FloorService`, memory store, ticking every second) in this process,
the way ``serve`` runs them together on one event loop:

- the full resync at start (every queue, site and agent written): wall time;
- steady state for ``--seconds``: 100 agent changes a second posted over HTTP, queues
  and sites refreshed every tick; the median and largest update (reads and the Redis
  write), and this process's CPU with the Redis floor against the same run without it;
- in both: the longest the event loop was held (a 1 ms heartbeat's largest lateness)
  and the longest gap between two ticks: what the Redis floor costs the writer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.bench_metrics import SITES, build_floor
from bench.common import machine, redis_server

ROOT = Path(__file__).resolve().parents[1]


class Watch:
    """The event loop's largest lateness (a 1 ms heartbeat) and the largest tick gap."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.stall = 0.0
        self.tick_gap = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.001)
            self.stall = max(self.stall, loop.time() - before - 0.001)

    async def _ticks(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await self.service.next_tick()
            now = loop.time()
            self.tick_gap = max(self.tick_gap, now - last)
            last = now

    def reset(self) -> None:
        self.stall = 0.0
        self.tick_gap = 0.0

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Watch]:
        self._tasks = [asyncio.create_task(self._beat()), asyncio.create_task(self._ticks())]
        try:
            yield self
        finally:
            for task in self._tasks:
                task.cancel()


async def _changes(base: str, seconds: float, clock: Any, per_second: int) -> None:
    """``per_second`` agent_state events a second over HTTP (available <-> not_ready)."""
    import aiohttp
    import msgspec

    names = [f"a{i:05d}" for i in range(10_000)]
    async with aiohttp.ClientSession() as http:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        i = 0
        while loop.time() < end:
            lines = []
            for _ in range(per_second):
                name = names[(i * 7919) % len(names)]
                state = "not_ready" if i % 2 else "available"
                site = SITES[int(name[1:]) % len(SITES)][0]
                event = {"type": "agent_state", "ts": clock() - 2.0, "agent": name}
                event.update(state=state, site=site)
                lines.append(msgspec.json.encode(event))
                i += 1
            body = b"\n".join(lines)
            headers = {"Content-Type": "application/x-ndjson"}
            async with http.post(f"{base}/api/v1/events", data=body, headers=headers) as r:
                await r.read()
            await asyncio.sleep(1.0)


async def _phase(url: str | None, seconds: float, queues: int, agents: int) -> dict[str, Any]:
    from callfloor.service import FloorService
    from callfloor.sinks.redis_floor import RedisFloor
    from callfloor.store.memory import MemoryStore

    proc = build_floor(queues, agents)
    floor_end = proc.clock
    wall0 = time.time()

    def clock() -> float:
        return floor_end + 1.0 + (time.time() - wall0)

    # The memory store in both runs (a redis:// store in the configuration would add
    # checkpoints): the Redis floor is given its URL.
    service = FloorService(
        proc.config, clock=clock, host="127.0.0.1", port=0, processor=proc, store=MemoryStore()
    )
    task = asyncio.create_task(service.run())
    await service.started.wait()
    base = f"http://127.0.0.1:{service.bound_port}"
    out: dict[str, Any] = {}
    watch = Watch(service)
    async with watch.watching():
        floor: RedisFloor | None = None
        floor_task = None
        if url is not None:
            floor = RedisFloor(service, url=url)
            started = time.perf_counter()
            floor_task = asyncio.create_task(floor.run())
            while floor.flushes < 1:
                await asyncio.sleep(0.005)
            out["resync_s"] = time.perf_counter() - started
            out["resync_hashes"] = floor.hashes_written
            out["resync_stall_s"] = watch.stall
            out["resync_tick_gap_s"] = watch.tick_gap
        await asyncio.sleep(2.0)
        watch.reset()
        durations: list[float] = []
        flushes = floor.flushes if floor else 0
        total = floor.flush_seconds_total if floor else 0.0
        cpu = time.process_time()
        changes = asyncio.create_task(_changes(base, seconds, clock, 100))
        while not changes.done():
            await asyncio.sleep(0.05)
            if floor is not None and floor.flushes > flushes:
                # Mean of the updates since the last look (usually one).
                n = floor.flushes - flushes
                durations.append((floor.flush_seconds_total - total) / n)
                flushes, total = floor.flushes, floor.flush_seconds_total
        out["cpu_s"] = time.process_time() - cpu
        out["stall_s"] = watch.stall
        out["tick_gap_s"] = watch.tick_gap
        if floor is not None:
            out["update_median_s"] = statistics.median(durations)
            out["update_max_s"] = max(durations)
            out["errors"] = floor.errors
            out["drops"] = floor.drops
        if floor_task is not None:
            floor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await floor_task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return out


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: statistics.median(run[k] for run in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=500)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    print(
        f"floor: {args.queues} queues, {args.agents} agents; {args.seconds:g} s steady state; "
        f"medians of {args.runs} runs"
    )
    withouts, withs = [], []
    for _ in range(args.runs):
        withouts.append(asyncio.run(_phase(None, args.seconds, args.queues, args.agents)))
        with redis_server() as (url, _):
            withs.append(asyncio.run(_phase(url, args.seconds, args.queues, args.agents)))
    without, with_floor = _medians(withouts), _medians(withs)
    ms = 1000.0
    print(
        f"resync at start: {with_floor['resync_s'] * ms:.0f} ms for "
        f"{with_floor['resync_hashes']:.0f} hashes; loop held at most "
        f"{with_floor['resync_stall_s'] * ms:.1f} ms, ticks at most "
        f"{with_floor['resync_tick_gap_s'] * ms:.0f} ms apart"
    )
    print(
        f"update (reads + MULTI): median {with_floor['update_median_s'] * ms:.1f} ms, "
        f"max {with_floor['update_max_s'] * ms:.1f} ms; errors {with_floor['errors']:.0f}, "
        f"drops {with_floor['drops']:.0f}"
    )
    for label, run in (("without", without), ("with", with_floor)):
        print(
            f"steady state {label} the Redis floor: CPU {run['cpu_s'] / args.seconds * 100:.1f} %"
            f" of a core; loop held at most {run['stall_s'] * ms:.1f} ms; ticks at most "
            f"{run['tick_gap_s'] * ms:.0f} ms apart"
        )
    extra = (with_floor["cpu_s"] - without["cpu_s"]) / args.seconds * 100
    print(f"the Redis floor's own CPU: {extra:.1f} % of a core")


if __name__ == "__main__":
    main()

"""Benchmark: the Redis store against ``memory:`` (and ``file://``), and takeover times.

Run with ``.venv/bin/python -m bench.bench_store``. A redis-server with
deploy/redis.conf (``appendfsync always``: every answered append is fsynced) runs on a
free loopback port with its data in a temporary directory (on this machine's disk,
like the file store's). Events are the first ``--events`` of the simulated bench day
(1,000 agents, 50 queues, 4 sites). Four measurements:

- append: one store append of a round of 1, 100 and 1,000 events, median latency
  (memory, file with fsync, redis);
- ingest: a live service in this process takes ``--events`` events in batches of
  1,000 (each acknowledged once durable), and applies them: events/s from the first
  submit until the last event is applied. ``memory:`` applies what it appended; Redis
  appends to the site streams, and the same process, owning the floor's partition
  (``partitions = "all"``), follows the streams and applies them. The ratio is the
  store's overhead on a service's throughput;
- checkpoint: saving the checkpoint of the bench floor's state (encode excluded):
  file (write, fsync, rename) and Redis (one Lua script: SET under the lease + XTRIM);
- takeover: two member processes (this script with ``--member``: a service with its
  coordinator and follower, no HTTP) share the floor by site; after the floor's events
  are in, one is SIGKILLed; the time until the other applies every site, and how much of
  it was the adoption (load + replay), for two ``lease_ttl`` values.

Medians of ``--runs`` runs; the machine line first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from itertools import islice
from pathlib import Path
from typing import Any

from bench.common import machine, median, redis_server, simulated_day

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000


# ----------------------------------------------------------------------------- redis


def flush(url: str) -> None:
    """Empty the bench Redis between runs."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


# ----------------------------------------------------------------------------- events


def load_events(count: int) -> tuple[list[Any], Path]:
    """The first ``count`` events of the bench day, decoded, and the day's config."""
    from callfloor.ingest.decode import decode_line

    events_path, config_path = simulated_day()
    with events_path.open("rb") as fh:
        out = [decode_line(line) for line in islice(fh, count)]
    return out, config_path


def _config(config_path: Path, store: str, **extra: str) -> Any:
    from callfloor.config import load_config, parse_config

    base = load_config(config_path)
    text = config_path.read_text() + f'\n[store]\nurl = "{store}"\n'
    text += "".join(f"{key} = {value}\n" for key, value in extra.items())
    import tomllib

    return parse_config(tomllib.loads(text), source=base.source)


# ----------------------------------------------------------------------------- append


async def bench_append(url: str, events: list[Any], runs: int) -> None:
    from callfloor.config import StoreConfig
    from callfloor.ingest.source import Batch
    from callfloor.store.file import FileStore
    from callfloor.store.memory import MemoryStore
    from callfloor.store.redis import RedisStore

    print("\nappend: one round, median latency (ms) and events/s")
    with tempfile.TemporaryDirectory(prefix="bench-store-file-") as tmp:
        stores: dict[str, Any] = {
            "memory": MemoryStore(),
            "file": FileStore(Path(tmp)),
            "redis": RedisStore(StoreConfig(url=url, kind="redis")),
        }
        for store in stores.values():
            await store.open()
        for size in (1, 100, 1000):
            row = []
            for name, store in stores.items():
                times = []
                for i in range(max(runs * 20, 50)):
                    start = (i * size) % max(1, len(events) - size)
                    batch = Batch(events[start : start + size])
                    t0 = time.perf_counter()
                    await store.append([batch], 0.0)
                    times.append(time.perf_counter() - t0)
                ms = median(times) * 1000
                row.append(f"{name} {ms:.3f} ms ({size / median(times):,.0f} ev/s)")
            print(f"  {size:>5} events: " + "; ".join(row))
        for store in stores.values():
            await store.close()


# ----------------------------------------------------------------------------- ingest


@contextlib.asynccontextmanager
async def _service(config: Any, clock: float) -> AsyncIterator[Any]:
    from callfloor.service import FloorService
    from callfloor.service.ownership import Coordinator, Follower

    service = FloorService(config, clock=lambda: clock, tick_s=0.25, watermark_delay_s=0.0)
    await service.store.open()
    tasks = [asyncio.create_task(service.writer.run())]
    if service.shared:
        tasks.append(asyncio.create_task(Coordinator(service).run()))
        tasks.append(asyncio.create_task(Follower(service).run()))
        while not service.writer.owned:
            await asyncio.sleep(0.01)
    try:
        yield service
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await service.store.close()


def _applied(service: Any) -> int:
    total = 0
    for proc in service.writer.processors():
        c = proc.view.counters()
        total += c.events + c.duplicates + c.rejected
    return total


async def _ingest_once(config: Any, events: list[Any]) -> float:
    from callfloor.ingest.source import Batch

    clock = max(float(e.ts) for e in events) + 1.0
    async with _service(config, clock) as service:
        loop = asyncio.get_running_loop()
        acks: list[asyncio.Future[Any]] = []
        t0 = time.perf_counter()
        for i in range(0, len(events), BATCH):
            fut: asyncio.Future[Any] = loop.create_future()
            acks.append(fut)
            await service.submit(Batch(events[i : i + BATCH], source="bench", ack=fut.set_result))
        await asyncio.gather(*acks)
        while _applied(service) < len(events):
            await asyncio.sleep(0.002)
        return time.perf_counter() - t0


async def bench_ingest(url: str, events: list[Any], config_path: Path, runs: int) -> float:
    print(f"\ningest: {len(events):,} events in batches of {BATCH}, acknowledged and applied")
    rates: dict[str, float] = {}
    for name, store in (("memory", "memory:"), ("redis", url)):
        times = []
        for _ in range(runs):
            if name == "redis":
                flush(url)
            times.append(await _ingest_once(_config(config_path, store), events))
        rates[name] = len(events) / median(times)
        print(f"  {name:>6}: median {median(times):.2f} s, {rates[name]:,.0f} events/s")
    print(
        f"  redis / memory: {rates['redis'] / rates['memory']:.2f} of the throughput "
        f"({(1 - rates['redis'] / rates['memory']) * 100:.0f}% overhead)"
    )
    return rates["redis"]


# ----------------------------------------------------------------------------- checkpoint


async def bench_checkpoint(url: str, runs: int) -> None:
    from bench.bench_metrics import build_floor
    from callfloor.config import StoreConfig
    from callfloor.processors.state import encode_checkpoint
    from callfloor.store.base import ALL
    from callfloor.store.file import FileStore
    from callfloor.store.redis import RedisStore

    proc = build_floor(n_queues=500, n_agents=10_000)
    t0 = time.perf_counter()
    blob = encode_checkpoint(proc)
    encode_s = time.perf_counter() - t0
    print(
        f"\ncheckpoint: the bench floor (500 queues, 10,000 agents), {len(blob) / 1e6:.1f} MB; "
        f"encode {encode_s * 1000:.0f} ms (both)"
    )
    flush(url)
    redis_store = RedisStore(StoreConfig(url=url, kind="redis"), member="bench")
    await redis_store.open()
    assert await redis_store.acquire(ALL, 60.0)
    with tempfile.TemporaryDirectory(prefix="bench-store-file-") as tmp:
        file_store = FileStore(Path(tmp))
        await file_store.open()
        for name, store in (("file", file_store), ("redis", redis_store)):
            times = []
            for _ in range(max(runs, 5)):
                t0 = time.perf_counter()
                await store.save(ALL, blob, {}, previous={})
                times.append(time.perf_counter() - t0)
            print(f"  {name:>6} save: median {median(times) * 1000:.0f} ms")
        await file_store.close()
    await redis_store.close()


# ----------------------------------------------------------------------------- takeover


def member(url: str, config_path: str, name: str, ttl: str, clock: str) -> None:
    """A member process: a service with its coordinator and follower; prints what it owns."""
    config = _config(
        Path(config_path),
        url,
        partitions='"site"',
        lease_ttl=f'"{ttl}"',
        checkpoint_every='"1s"',
    )
    now = float(clock)

    async def main() -> None:
        from callfloor.service import FloorService
        from callfloor.service.ownership import Coordinator, Follower
        from callfloor.store.redis import RedisStore

        store = RedisStore(config.store, sites=config.sites, member=name)
        service = FloorService(
            config, store=store, clock=lambda: now, tick_s=0.25, watermark_delay_s=0.0
        )
        await store.open()
        coordinator = Coordinator(service)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.writer.run())
            tg.create_task(coordinator.run())
            tg.create_task(Follower(service).run())
            last: tuple[str, ...] = ()
            while True:
                owned = tuple(sorted(service.writer.owned))
                if owned != last:
                    print(
                        f"{time.time():.4f} owned={','.join(owned)} {_applied(service)}",
                        flush=True,
                    )
                    last = owned
                await asyncio.sleep(0.005)

    asyncio.run(main())


def _spawn(url: str, config_path: Path, name: str, ttl: str, clock: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.bench_store", "--member", url, str(config_path)),
            *(name, ttl, repr(clock)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _owned_lines(proc: subprocess.Popen[str], until: set[str], timeout: float) -> float:
    """Read the member's lines until it owns ``until``: the time of that line.

    Lines are read by a thread, so a member that prints nothing more cannot hold the
    bench past ``timeout``.
    """
    lines = _lines(proc)
    deadline = time.time() + timeout
    while (left := deadline - time.time()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break  # the member ended
        parts = line.split()
        if len(parts) != 3 or not parts[1].startswith("owned="):
            continue  # something else the member printed
        stamp, owned, _ = parts
        if set(owned.removeprefix("owned=").split(",")) - {""} == until:
            return float(stamp)
    raise RuntimeError(f"member did not come to own {sorted(until)} in {timeout} s")


_READERS: dict[int, queue.Queue[str | None]] = {}


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The member's stdout lines (None at its end), read by one thread per member."""
    found = _READERS.get(proc.pid)
    if found is not None:
        return found
    lines: queue.Queue[str | None] = queue.Queue()
    _READERS[proc.pid] = lines

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


async def _feed(url: str, config_path: Path, events: list[Any]) -> None:
    """Append the events to the site streams as a third process would (no owner here)."""
    from callfloor.ingest.source import Batch
    from callfloor.store.redis import RedisStore

    config = _config(config_path, url, partitions='"site"')
    store = RedisStore(config.store, sites=config.sites, member="feeder")
    await store.open()
    for i in range(0, len(events), BATCH):
        await store.append([Batch(events[i : i + BATCH])], float("-inf"))
    await store.close()


def bench_takeover(url: str, events: list[Any], config_path: Path, runs: int) -> None:
    from callfloor.service.ownership import LeaseTiming, wanted_owner

    sites = {"lon", "sh", "nyc", "blr"}
    names = ("m1", "m2")
    victim = next(n for n in names if any(wanted_owner(s, names) == n for s in sites))
    survivor = next(n for n in names if n != victim)
    print(
        f"\ntakeover: partitions by site (4 sites), {len(events):,} events in; SIGKILL the "
        f"owner of {sorted(s for s in sites if wanted_owner(s, names) == victim)}"
    )
    for ttl in ("2s", "10s"):
        ttl_s = float(ttl[:-1])
        took: list[float] = []
        for _ in range(runs):
            flush(url)
            asyncio.run(_feed(url, config_path, events))
            clock = max(float(e.ts) for e in events) + 1.0
            procs = {n: _spawn(url, config_path, n, ttl, clock) for n in names}
            try:
                for n in names:
                    want = {s for s in sites if wanted_owner(s, names) == n}
                    _owned_lines(procs[n], want, 60.0)
                time.sleep(ttl_s * 0.6 + 1.5)  # checkpoints taken; leases renewed mid-way
                killed = time.time()
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                done = _owned_lines(procs[survivor], sites, 60.0)
                took.append(done - killed)
            finally:
                for proc in procs.values():
                    if proc.poll() is None:
                        proc.kill()
                    proc.wait()
        bound = LeaseTiming(ttl_s).lease_s + LeaseTiming(ttl_s).period_s
        print(
            f"  lease_ttl {ttl}: median {median(took):.2f} s from SIGKILL to every site "
            f"applied (max {max(took):.2f}; lease + one period = {bound:.1f} s; "
            f"{median(took) / ttl_s:.2f} of lease_ttl)"
        )


# ----------------------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--member":
        member(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("append", "ingest", "checkpoint", "takeover"))
    args = parser.parse_args()
    print(machine())
    events, config_path = load_events(args.events)
    with redis_server() as (url, _):
        if args.only in (None, "append"):
            asyncio.run(bench_append(url, events, args.runs))
        if args.only in (None, "ingest"):
            asyncio.run(bench_ingest(url, events, config_path, args.runs))
        if args.only in (None, "checkpoint"):
            asyncio.run(bench_checkpoint(url, args.runs))
        if args.only in (None, "takeover"):
            bench_takeover(url, events[: min(len(events), 100_000)], config_path, args.runs)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

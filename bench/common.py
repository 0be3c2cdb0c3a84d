"""Shared benchmark helpers: machine description, medians, the simulated day."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

OUT = Path(__file__).parent / "out"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on loopback that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, Path]]:
    """redis-server with deploy/redis.conf (appendfsync always) on a free loopback port,
    its data in a temporary directory on this machine's disk: its URL and directory."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    directory = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    port = free_port()
    conf = directory / "redis.conf"
    conf.write_text(
        (ROOT / "deploy" / "redis.conf").read_text()
        + f"\nbind 127.0.0.1\nport {port}\ndir {directory}\ndaemonize no\nsave ''\n"
    )
    proc = subprocess.Popen(
        [binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", port), 0.1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.02)
        else:
            raise RuntimeError("redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0", directory
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def machine() -> str:
    """CPU model, cores and Python version, for docs/benchmarks.md."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    )


def median(values: list[float]) -> float:
    """The median (benchmarks report medians: the machine is small and noisy)."""
    return statistics.median(values)


def simulated_day(
    agents: int = 1000, queues: int = 50, sites: int = 4, seed: int = 7
) -> tuple[Path, Path]:
    """NDJSON of one simulated day and its config, generated once into bench/out/."""
    from callfloor.simulator import FloorSimulation, build_spec

    OUT.mkdir(exist_ok=True)
    events = OUT / f"day-{agents}a-{queues}q-{sites}s-{seed}.ndjson"
    config = events.with_suffix(".toml")
    if not events.exists() or not config.exists():
        import msgspec

        sim = FloorSimulation(build_spec(agents=agents, queues=queues, sites=sites, seed=seed))
        encode = msgspec.json.encode
        tmp = events.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            # 2026-11-23 00:00 UTC: a whole day of every site's profile.
            for event in sim.events(1_795_392_000.0, 86_400.0):
                fh.write(encode(event) + b"\n")
        tmp.rename(events)
        config.write_text(sim.config_toml())
    return events, config

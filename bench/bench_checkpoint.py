"""Benchmark: checkpoint dump + encode and decode + load on the bench floor.

Run with ``.venv/bin/python -m bench.bench_checkpoint``. Targets (issue "production-grade
core"): for 10,000 agents and 500 queues, dump + encode < 150 ms and load < 300 ms. The
floor is the one ``bench.bench_metrics`` builds (two hours of synthetic traffic through
the public API), so its histories, windows and violations have realistic sizes.

Dump + encode is timed in the process that holds the floor, as a live service does every
``checkpoint_every``. Load is what a restart does: each run is a fresh process that reads
the checkpoint file and times ``decode_checkpoint`` alone (not the interpreter start).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_metrics import build_floor
from bench.common import machine
from callfloor.processors.state import encode_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queues", type=int, default=500)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    proc = build_floor(n_queues=args.queues, n_agents=args.agents)
    stats = proc.view.stats()
    print(machine())
    print(
        f"floor: {args.queues} queues, {args.agents} agents, "
        f"{proc.view.counters().events} events applied, {stats.history_events} in histories"
    )
    dumps: list[float] = []
    blob = b""
    for _ in range(args.repeat):
        gc.collect()
        t0 = time.perf_counter()
        blob = encode_checkpoint(proc)
        dumps.append(time.perf_counter() - t0)
    # The checksum's share, timed in the same process right after each encode (a noisy
    # machine moves both alike): what format 3 adds to the encode, and to the load.
    digests: list[float] = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        hashlib.sha256(blob).digest()
        digests.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "floor.checkpoint"
        path.write_bytes(blob)
        loads = [_load_in_a_fresh_process(path) for _ in range(args.repeat)]
    print(f"checkpoint size: {len(blob) / 1e6:.1f} MB")
    print(
        f"dump + encode: median {statistics.median(dumps) * 1000:.0f} ms "
        f"(min {min(dumps) * 1000:.0f}, max {max(dumps) * 1000:.0f}; target < 150 ms)"
    )
    print(
        f"decode + load: median {statistics.median(loads) * 1000:.0f} ms "
        f"(min {min(loads) * 1000:.0f}, max {max(loads) * 1000:.0f}; target < 300 ms)"
    )
    digest = statistics.median(digests)
    print(
        f"of which the SHA-256 (format 3, in both): median {digest * 1000:.1f} ms = "
        f"{digest / statistics.median(dumps):.0%} of the encode, "
        f"{digest / statistics.median(loads):.0%} of the load"
    )


_LOAD = """
import sys, time
from bench.bench_metrics import SITES
from callfloor.config import Config, SiteConfig
from callfloor.processors.state import decode_checkpoint
config = Config(sites={name: SiteConfig(name=name, timezone=tz) for name, tz in SITES})
blob = open(sys.argv[1], "rb").read()
t0 = time.perf_counter()
proc = decode_checkpoint(config, blob).processor
print(time.perf_counter() - t0)
"""


def _load_in_a_fresh_process(path: Path) -> float:
    """Seconds ``decode_checkpoint`` takes in a new process (a restart)."""
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(path)], capture_output=True, check=True, text=True
    )
    return float(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()

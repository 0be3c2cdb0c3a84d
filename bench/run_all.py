"""Run every benchmark in turn (``make bench``); copy the results into docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys

BENCHES = (
    "bench.bench_replay",
    "bench.bench_memory",
    "bench.bench_replay_memory",
    "bench.bench_metrics",
    "bench.bench_checkpoint",
    "bench.bench_reads",
    "bench.bench_mqtt",
    "bench.bench_latency",
    "bench.bench_store",
    "bench.bench_redis_floor",
    "bench.bench_alert_sinks",
    "bench.bench_inflight",
    "bench.bench_attacks",
    "bench.bench_feeds",
    "bench.bench_backfill",
    "bench.bench_wallboard",
)


def main() -> None:
    for module in BENCHES:
        print(f"== {module}", flush=True)
        subprocess.run([sys.executable, "-m", module], check=True)


if __name__ == "__main__":
    main()

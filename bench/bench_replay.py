"""Replay throughput: a simulated day (>= 1M events, 1,000 agents, 50 queues) on one core.

Runs ``callfloor replay`` end to end (process start, decoding, processing, the JSON
document) pinned to one CPU, several times, and reports the median; then splits
one in-process run into decoding and processing.

    python -m bench.bench_replay [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import machine, median, simulated_day


def _count_lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    events, config = simulated_day()
    n = _count_lines(str(events))
    print(f"machine: {machine()}")
    print(f"input: {events.name}: {n:,} events")
    # --quiet: the summary line on stderr is not part of the measurement.
    cmd = [
        sys.executable,
        "-m",
        "callfloor",
        "replay",
        str(events),
        "--config",
        str(config),
        "--quiet",
    ]
    walls: list[float] = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run(
            cmd,
            check=True,
            stdout=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        )
        walls.append(time.perf_counter() - started)
    wall = median(walls)
    print(
        f"callfloor replay, pinned to one core, {args.runs} runs: median {wall:.2f} s "
        f"= {n / wall:,.0f} events/s (runs: {', '.join(f'{w:.2f}' for w in walls)})"
    )

    from callfloor.config import load_config
    from callfloor.processors.engine import FloorProcessor
    from callfloor.replay import batch_gc, read_ndjson

    cfg = load_config(config)
    with batch_gc():
        started = time.perf_counter()
        decoded = list(read_ndjson(events))
        decode_s = time.perf_counter() - started
        proc = FloorProcessor(cfg)
        apply = proc.apply
        started = time.perf_counter()
        for event in decoded:
            apply(event)  # type: ignore[arg-type]
        apply_s = time.perf_counter() - started
    print(
        f"in-process split: decode {decode_s:.2f} s ({n / decode_s:,.0f}/s), "
        f"process {apply_s:.2f} s ({n / apply_s:,.0f}/s)"
    )


if __name__ == "__main__":
    main()

"""Replay's peak memory (RSS) against the events replayed, bounded and keeping everything.

A simulated floor (500 agents, 30 queues, 3 sites: about 540,000 events a day) is
written for 1, 2, 4, ... days (``callfloor simulate``), then ``callfloor replay`` runs
on it as a process, once folding history older than ``[limits] max_lateness`` (the
default) and once with ``--keep-everything``; the peak RSS of each process comes from
``wait4``. The largest length is the "generated month" of 10 million events.

The documents of both modes are compared byte for byte at every length (they must be
equal: the bounded mode only folds what no later event can change).

    python -m bench.bench_replay_memory [--days 1 2 4 19] [--alerts]

``--alerts`` keeps the default alert rules (about ten times the replay time); without
it the floor's configuration sets ``[alerts] default_rules = false``, so the figure is
the floor's own state.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine

AGENTS = 500
QUEUES = 30
SITES = 3
SEED = 7


def _simulate(directory: Path, days: int, alerts: bool) -> tuple[Path, Path, int]:
    data = directory / f"floor-{days}d.ndjson"
    config = directory / f"floor-{days}d.toml"
    if not data.exists():
        subprocess.run(
            [
                sys.executable, "-m", "callfloor", "simulate",
                "--agents", str(AGENTS), "--queues", str(QUEUES), "--sites", str(SITES),
                "--seed", str(SEED), "--duration", f"{days}d",
                "--output", str(data), "--write-config", str(config),
            ],
            check=True,
            cwd=ROOT,
        )  # fmt: skip
        if not alerts:
            with config.open("a", encoding="utf-8") as fh:
                fh.write("\n[alerts]\ndefault_rules = false\n")
    with data.open("rb") as fh:
        events = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b""))
    return data, config, events


def _replay(data: Path, config: Path, keep_everything: bool) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes, and the SHA-256 of the document."""
    argv = [sys.executable, "-m", "callfloor", "replay", str(data), "--config", str(config)]
    argv += ["--quiet"] + (["--keep-everything"] if keep_everything else [])
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"replay failed ({proc.returncode}): {' '.join(argv)}")
        out.seek(0)
        digest = hashlib.sha256(out.read()).hexdigest()
    return wall, usage.ru_maxrss * 1024, digest  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[1, 2, 4, 19])
    parser.add_argument("--alerts", action="store_true", help="keep the default alert rules")
    parser.add_argument("--dir", type=Path, help="where the simulated floors are kept")
    parser.add_argument(
        "--bounded-only-from",
        type=int,
        default=1000,
        help="from this many days on, skip --keep-everything (its memory grows with input)",
    )
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="callfloor-bench-memory-"))
    directory.mkdir(parents=True, exist_ok=True)
    print(machine())
    print(
        f"{AGENTS} agents, {QUEUES} queues, {SITES} sites; alerts {'on' if args.alerts else 'off'}"
    )
    print("| days | events | mode | wall | events/s | peak RSS | bytes/event | same document |")
    print("|---|---|---|---|---|---|---|---|")
    for days in args.days:
        data, config, events = _simulate(directory, days, args.alerts)
        modes = [False] if days >= args.bounded_only_from else [False, True]
        digests: dict[bool, str] = {}
        for keep in modes:
            wall, rss, digest = _replay(data, config, keep)
            digests[keep] = digest
            same = "" if len(digests) < 2 else ("yes" if len(set(digests.values())) == 1 else "NO")
            print(
                f"| {days} | {events:,} | {'keep everything' if keep else 'bounded'} "
                f"| {wall:.1f} s | {events / wall:,.0f} | {rss / 2**20:,.0f} MiB "
                f"| {rss / events:,.0f} | {same} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

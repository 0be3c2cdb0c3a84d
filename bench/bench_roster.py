"""Benchmark: what a roster costs the live path (issue 11 §3).

Run with ``.venv/bin/python -m bench.bench_roster``. A simulated day (200 agents, 10
queues, 2 sites) is applied with a change set drained every 200 events (what the live
writer does on its ticks), without a roster and with every agent rostered (a shift
on the day's weekday, starting 08:00-11:00); then the document is read. Medians of
three runs each.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import msgspec

from bench.common import machine, simulated_day
from callfloor.config import load_config
from callfloor.ingest.decode import decode_line
from callfloor.processors.engine import FloorProcessor


def _run(config_path: Path, lines: list[bytes]) -> tuple[float, float, int]:
    cfg = load_config(config_path)
    events = [decode_line(line) for line in lines]
    applies: list[float] = []
    proc = FloorProcessor(cfg)
    for _ in range(3):
        proc = FloorProcessor(cfg)
        t0 = time.perf_counter()
        for i, event in enumerate(events):
            proc.apply(event)  # type: ignore[arg-type]
            if i % 200 == 0:
                proc.drain_changes()
        applies.append(time.perf_counter() - t0)
    reads = []
    for _ in range(5):
        t0 = time.perf_counter()
        doc = proc.view.document()
        reads.append(time.perf_counter() - t0)
    n = sum(1 for v in doc.violations if v.kind in ("late_login", "early_logout"))
    return statistics.median(applies), statistics.median(reads), n


def main() -> None:
    """Print the figures for docs/benchmarks.md."""
    events_path, config_path = simulated_day(agents=200, queues=10, sites=2)
    lines = events_path.read_bytes().splitlines()
    agents = sorted(
        {str(msgspec.json.decode(line)["agent"]) for line in lines if b'"agent_state"' in line}
    )
    with tempfile.TemporaryDirectory() as tmp:
        shifts = Path(tmp) / "roster.csv"
        shifts.write_text(
            "agent,day,start,end\n"
            + "".join(
                f"{a},mon,{8 + i % 4:02d}:00,{16 + i % 4:02d}:00\n" for i, a in enumerate(agents)
            )
        )
        rostered = Path(tmp) / "rostered.toml"
        rostered.write_text(config_path.read_text() + f'\n[roster]\nfile = "{shifts}"\n')
        print(machine())
        print(f"{len(lines)} events, {len(agents)} agents")
        for name, path in (("no roster", config_path), ("all rostered", rostered)):
            apply_s, read_s, n = _run(path, lines)
            print(
                f"{name}: apply + drain every 200 events {apply_s:.2f} s "
                f"({len(lines) / apply_s:,.0f} events/s); document {read_s * 1000:.1f} ms; "
                f"roster violations {n}"
            )


if __name__ == "__main__":
    main()

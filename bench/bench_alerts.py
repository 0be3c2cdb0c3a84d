"""Alert rule evaluation: what the default rules cost a replay, and memory per alert.

Replays one simulated floor in process twice per run, with the default rules and with
``[alerts] default_rules = false`` (no driver at all), and reports the median of each
and their ratio; then the bytes one alert's state takes.

    python -m bench.bench_alerts [--agents 2000] [--queues 100] [--hours 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.common import machine, median


def _replay(events: Path, config: Path) -> tuple[float, int]:
    from callfloor.config import load_config
    from callfloor.replay import run_replay

    cfg = load_config(config)
    started = time.perf_counter()
    result = run_replay([events], cfg)
    took = time.perf_counter() - started
    return took, len(result.processor.view.alerts())


def _alert_bytes() -> float:
    """Bytes per active alert: 1,000 firing alerts' engine state, traced."""
    from callfloor.alerts.engine import AlertEngine
    from callfloor.alerts.rules import default_rules

    rules = default_rules("15m")
    rule = rules[0]
    engine = AlertEngine(rules, notify=False)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(1000):
        engine.step(rule, "queue", f"queue-{i:04d}", "site", 1000.0, True, True, 0.5, 0.8)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return grown / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--queues", type=int, default=100)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    events = work / "floor.ndjson"
    with_rules = work / "floor.toml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "callfloor",
            "simulate",
            "--agents",
            str(args.agents),
            "--queues",
            str(args.queues),
            "--sites",
            str(args.sites),
            "--duration",
            f"{args.hours}h",
            "--output",
            str(events),
            "--write-config",
            str(with_rules),
        ],
        check=True,
    )
    without = work / "floor-no-alerts.toml"
    without.write_text(with_rules.read_text() + "\n[alerts]\ndefault_rules = false\n")
    n = sum(1 for _ in events.open("rb"))
    print(f"machine: {machine()}")
    print(f"input: {n:,} events, {args.agents} agents, {args.queues} queues, {args.hours} h")
    plain: list[float] = []
    alerting: list[float] = []
    listed = 0
    for _ in range(args.runs):
        plain.append(_replay(events, without)[0])
        took, listed = _replay(events, with_rules)
        alerting.append(took)
    p, a = median(plain), median(alerting)
    print(f"replay without rules: median {p:.2f} s ({n / p:,.0f} events/s)")
    print(f"replay with the default rules: median {a:.2f} s ({n / a:,.0f} events/s)")
    print(f"alerts listed at the end: {listed}")
    print(f"rule evaluation costs {a / p - 1:.1f}x replay time (target <= 0.1x)")
    print(f"memory per active alert: {_alert_bytes():.0f} bytes")


if __name__ == "__main__":
    main()

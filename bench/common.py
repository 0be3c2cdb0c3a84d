"""Shared benchmark helpers: machine description, medians, the simulated day."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path

OUT = Path(__file__).parent / "out"


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

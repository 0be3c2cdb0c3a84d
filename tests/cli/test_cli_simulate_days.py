"""Two simulated days replayed one after the other are two days of events, not one day
and its duplicates; the same input twice is warned about."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DAY = 86_400


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callfloor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _day(tmp_path: Path, start: int) -> Path:
    out = tmp_path / f"day-{start}.ndjson"
    _cli(
        "simulate",
        *("--agents", "6", "--queues", "2", "--sites", "1", "--duration", "8h"),
        *("--start", str(start), "--output", str(out)),
    )
    return out


def test_ids_differ_between_runs_with_another_start(tmp_path: Path) -> None:
    """The same seed on two days gives distinct event ids: nothing is a duplicate."""
    start = 1_795_392_000
    first, second = _day(tmp_path, start), _day(tmp_path, start + DAY)
    done = _cli("replay", str(first), str(second), "--output", "json")
    assert " 0 duplicates" in done.stderr
    assert "warning" not in done.stderr


def test_a_replay_of_mostly_duplicates_is_warned_about(tmp_path: Path) -> None:
    """The same file given twice: the summary is followed by a warning that says so."""
    day = _day(tmp_path, 1_795_392_000)
    done = _cli("replay", str(day), str(day), "--output", "json")
    assert "warning:" in done.stderr and "duplicates (an id seen before)" in done.stderr

"""Progress of a long replay: a bar on a terminal, a line a minute in a log."""

from __future__ import annotations

import io

from callfloor.cli.progress import ProgressReporter
from callfloor.replay import ReplayProgress


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _at(done: int, events: int, pass_number: int = 1) -> ReplayProgress:
    return ReplayProgress(pass_number, done, 2_000_000_000, events)


def test_a_log_gets_one_line_a_minute() -> None:
    """Not a terminal: nothing in the first minute, then one plain line a minute."""
    out, clock = io.StringIO(), Clock()
    report = ProgressReporter(out, terminal=False, clock=clock)
    for second in range(0, 150, 5):
        clock.now = 1000.0 + second
        report(_at(second * 1_000_000, second * 10_000))
    report.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0] == (
        "callfloor replay: 3% read (60 MB of 2 GB), 600,000 events applied, "
        "10,000 events/s, pass 1, 60 s"
    )
    assert lines[1].startswith("callfloor replay: 6% read (120 MB of 2 GB), 1,200,000")


def test_a_short_replay_writes_nothing() -> None:
    """Under a minute in a log, under a second on a terminal: no progress at all."""
    for terminal, seconds in ((False, 59.0), (True, 0.9)):
        out, clock = io.StringIO(), Clock()
        report = ProgressReporter(out, terminal=terminal, clock=clock)
        clock.now += seconds
        report(_at(1000, 10))
        report.close()
        assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_redrawn_in_place_and_erased() -> None:
    """On a terminal: a bar redrawn on one line (carriage returns), erased at the end."""
    out, clock = io.StringIO(), Clock()
    report = ProgressReporter(out, terminal=True, clock=clock)
    clock.now += 2.0
    report(_at(1_000_000_000, 400_000))
    clock.now += 0.1
    report(_at(1_100_000_000, 450_000))  # within 0.2 s of the last draw: skipped
    clock.now += 0.2
    report(_at(1_200_000_000, 500_000, pass_number=2))
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r") == 2
    assert "[############------------]  50% 400,000 events, 200,000 events/s" in text
    assert "pass 2" in text
    report.close()
    assert out.getvalue().endswith("\r\x1b[K")

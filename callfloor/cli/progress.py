"""Progress of a long replay on stderr: a bar on a terminal, a line a minute otherwise.

A replay of years of logs runs for minutes. On a terminal a one-line bar is redrawn in
place (at most five times a second, from the first second on) and erased at the end, so
the summary line stands alone; in a log (stderr redirected or piped) one plain line is
written a minute, so a short replay writes none and a long one leaves a readable trail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TextIO

from callfloor.replay import ReplayProgress

PROG: Final[str] = "callfloor replay"
BAR_WIDTH: Final[int] = 24
BAR_AFTER_S: Final[float] = 1.0  # no bar for a replay that takes less
BAR_EVERY_S: Final[float] = 0.2
LINE_EVERY_S: Final[float] = 60.0


def _size(n: int) -> str:
    """``512 B``, ``3.4 MB``, ``2.71 GB`` (decimal units, as ``ls -h --si``)."""
    if n < 1000:
        return f"{n} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < scale * 1000 or unit == "GB":
            value = n / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


class ProgressReporter:
    """A :data:`callfloor.replay.ProgressCallback` writing to ``stream``.

    ``terminal`` defaults to ``stream.isatty()``; ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.terminal = stream.isatty() if terminal is None else terminal
        self.clock = clock
        self.started = clock()
        self._next = self.started + (BAR_AFTER_S if self.terminal else LINE_EVERY_S)
        self._drawn = False
        self._pass_started = self.started
        self._pass = 1  # the first pass starts with the reporter

    def __call__(self, progress: ReplayProgress) -> None:
        now = self.clock()
        if progress.pass_number != self._pass:
            self._pass = progress.pass_number
            self._pass_started = now
        if now < self._next:
            return
        self._next = now + (BAR_EVERY_S if self.terminal else LINE_EVERY_S)
        if self.terminal:
            self.stream.write("\r" + self._bar(progress, now) + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(f"{PROG}: {self._line(progress, now)}\n")
        self.stream.flush()

    def close(self) -> None:
        """Erase the bar (the summary line follows on a clean line)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def _fraction(self, progress: ReplayProgress) -> float:
        if progress.bytes_total <= 0:
            return 0.0
        return min(1.0, progress.bytes_done / progress.bytes_total)

    def _rate(self, progress: ReplayProgress, now: float) -> str:
        elapsed = now - self._pass_started
        return f"{progress.events / elapsed:,.0f} events/s" if elapsed > 0 else ""

    def _bar(self, progress: ReplayProgress, now: float) -> str:
        fraction = self._fraction(progress)
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        parts = [f"[{bar}] {fraction:4.0%}", f"{progress.events:,} events"]
        rate = self._rate(progress, now)
        if rate:
            parts.append(rate)
        if progress.pass_number > 1:
            parts.append(f"pass {progress.pass_number}")
        return " ".join(parts[:1]) + " " + ", ".join(parts[1:])

    def _line(self, progress: ReplayProgress, now: float) -> str:
        fraction = self._fraction(progress)
        parts = [
            f"{fraction:.0%} read ({_size(progress.bytes_done)} of {_size(progress.bytes_total)})",
            f"{progress.events:,} events applied",
        ]
        rate = self._rate(progress, now)
        if rate:
            parts.append(rate)
        parts.append(f"pass {progress.pass_number}")
        parts.append(f"{now - self.started:.0f} s")
        return ", ".join(parts)


__all__ = ["ProgressReporter"]

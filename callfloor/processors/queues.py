"""Queues and sites: windowed counts, waiting legs, lifetime totals, calendars."""

from __future__ import annotations

from typing import Final

from callfloor.config import QueuePolicy, SiteConfig
from callfloor.processors.calendar import SiteCalendar
from callfloor.processors.calls import Leg
from callfloor.processors.windows import NFIELDS, QueueWindows

# Wait-time histogram bounds (seconds); each queue adds its own SL and short-abandon
# thresholds so `histogram_quantile` and SL-from-buckets line up with the contract.
STANDARD_WAIT_BUCKETS: Final[tuple[float, ...]] = (
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
    90.0,
    120.0,
    180.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
    14400.0,
)


def wait_bounds(policy: QueuePolicy) -> tuple[float, ...]:
    """Histogram bounds of a queue: the standard ones plus its own thresholds."""
    return tuple(
        sorted({*STANDARD_WAIT_BUCKETS, policy.sl_threshold_s, policy.short_abandon_s} - {0.0})
    )


class SiteState:
    """One call floor: its configuration and calendar."""

    __slots__ = ("calendar", "config", "name")

    def __init__(self, config: SiteConfig) -> None:
        self.name = config.name
        self.config = config
        self.calendar = SiteCalendar(config.timezone, config.interval_minutes)


class QueueState:
    """One queue: policy, waiting legs, windowed counts and lifetime totals."""

    __slots__ = (
        "abandoned_wait_us",
        "answered_wait_us",
        "bounds",
        "calendar",
        "channel",
        "configured",
        "hist_abandoned",
        "hist_answered",
        "listed",
        "name",
        "open",
        "policy",
        "site",
        "site_fixed",
        "totals",
        "windows",
    )

    def __init__(
        self,
        name: str,
        site: str,
        channel: str,
        policy: QueuePolicy,
        widths: tuple[float, ...],
        *,
        configured: bool,
        site_fixed: bool,
        span: float | None = None,
    ) -> None:
        """``span``: how far back the windows keep records (default: the widest width)."""
        self.name = name
        self.site = site
        self.site_fixed = site_fixed  # configured site, or set by the first call_queued
        self.calendar = SiteCalendar("UTC", 15)  # the site's, set by the processor
        self.channel = channel
        self.policy = policy
        self.configured = configured
        self.listed = configured  # shown in documents: configured or named by a call_queued
        self.windows = QueueWindows(widths, span)
        self.open: dict[str, Leg] = {}  # waiting legs by call_id
        self.totals = [0] * NFIELDS  # since start-up, for Prometheus counters
        self.bounds = wait_bounds(policy)
        self.hist_answered = [0] * (len(self.bounds) + 1)
        self.hist_abandoned = [0] * (len(self.bounds) + 1)
        # Sums of the waits counted in each histogram (they restart with it).
        self.answered_wait_us = 0
        self.abandoned_wait_us = 0

    def oldest_start(self) -> float | None:
        """``call_queued.ts`` of the oldest waiting leg."""
        if not self.open:
            return None
        return min(leg.start for leg in self.open.values())

    def histogram(self, buckets: list[int], wait_s: float) -> None:
        """Count one wait in a lifetime histogram."""
        bounds = self.bounds
        i = 0
        n = len(bounds)
        while i < n and wait_s > bounds[i]:
            i += 1
        buckets[i] += 1

"""PromQL for a catalogue family, from its type, unit and hints.

Pure string building, no Grafana types: the queries are what the boards show and what
the tests run against a real Prometheus. Grafana's variables stay in the text
(``$queue``, ``$__rate_interval``); :data:`VARIABLE_FILTERS` says which label each
dashboard variable filters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from callfloor.metrics.catalogue import Family, MetricType, Unit

RATE_WINDOW: Final = "$__rate_interval"
"""The range of every rate(): Grafana's, at least four scrape intervals."""

TOP_AGENTS: Final = 20
"""Per-agent bars show the agents with the largest values only."""

QUANTILE: Final = 0.95
"""A histogram is drawn as this quantile."""

VARIABLE_FILTERS: Final[Mapping[str, str]] = {
    "site": 'site=~"$site"',
    "queue": 'queue=~"$queue"',
    "team": 'team=~"$team"',
    "window": 'window="$window"',
}
"""The matcher a family gets for each of these labels it carries: the boards' variables."""


def matchers(family: Family, variables: Sequence[str]) -> str:
    """The label matchers of ``family`` for the board's ``variables`` (in label order)."""
    wanted = [VARIABLE_FILTERS[label] for label in family.labels if label in variables]
    return "{" + ", ".join(wanted) + "}" if wanted else ""


def _by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def expression(family: Family, by: Sequence[str], variables: Sequence[str] = ()) -> str:
    """The family's value per ``by`` labels, combined across processes.

    Counters are a per-second rate; a summary is its mean (sum over count); a histogram
    its :data:`QUANTILE`; a point in time (Unix seconds) its age, ``time()`` minus it;
    other gauges the value as it is. Series of several processes combine by the
    family's aggregation (``sum``, ``max``, ``min``).
    """
    name = family.name
    sel = matchers(family, variables)
    agg = family.aggregation.value
    if family.type is MetricType.COUNTER:
        return f"{agg}{_by(by)} (rate({name}{sel}[{RATE_WINDOW}]))"
    if family.type is MetricType.SUMMARY:
        total = f"sum{_by(by)} (rate({name}_sum{sel}[{RATE_WINDOW}]))"
        count = f"sum{_by(by)} (rate({name}_count{sel}[{RATE_WINDOW}]))"
        return f"{total} / {count}"
    if family.type is MetricType.HISTOGRAM:
        buckets = f"sum by ({', '.join(['le', *by])}) (rate({name}_bucket{sel}[{RATE_WINDOW}]))"
        return f"histogram_quantile({QUANTILE}, {buckets})"
    if family.unit is Unit.UNIX_SECONDS:
        return f"time() - {agg}{_by(by)} ({name}{sel})"
    return f"{agg}{_by(by)} ({name}{sel})"


def top(expr: str, k: int = TOP_AGENTS) -> str:
    """Only the ``k`` series with the largest values."""
    return f"topk({k}, {expr})"


def legend(labels: Sequence[str], fallback: str) -> str:
    """A legend naming the series by its labels (``fallback`` when it has none)."""
    return " ".join("{{" + label + "}}" for label in labels) if labels else fallback

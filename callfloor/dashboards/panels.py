"""Grafana panels for catalogue families, built with grafana-foundation-sdk.

Every panel reads the board's ``datasource`` variable, carries a stable id (a hash of
its board and key, so adding a family never renumbers the others: links to a panel
keep working) and takes its unit and colours from the family.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Final

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

from callfloor.dashboards.thresholds import Step
from callfloor.metrics.catalogue import Family, MetricType, PanelKind, Unit

DATASOURCE: Final = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
"""Every query goes to the Prometheus the ``datasource`` variable picks."""

# Grafana unit ids by what the panel's number measures.
_GAUGE_UNITS: Final[Mapping[Unit, str]] = {
    Unit.NONE: "none",
    Unit.SECONDS: "s",
    Unit.RATIO: "percentunit",
    Unit.PER_SECOND: "reqps",
    Unit.UNIX_SECONDS: "s",  # drawn as an age: time() minus it
}
_RATE_UNITS: Final[Mapping[Unit, str]] = {Unit.NONE: "cps", Unit.SECONDS: "s"}

PanelBuilder = cogbuilder.Builder[models.Panel]


def panel_id(board: str, key: str) -> int:
    """A panel id stable across generations: a hash of the board's uid and the key."""
    return zlib.crc32(f"{board}/{key}".encode()) & 0x7FFFFFFF


def unit(family: Family) -> str:
    """The Grafana unit of the family's panel (a rate for counters)."""
    if family.type is MetricType.COUNTER:
        return _RATE_UNITS.get(family.unit, "none")
    if family.type is MetricType.SUMMARY:
        return _GAUGE_UNITS[family.unit]
    return _GAUGE_UNITS[family.unit]


def thresholds(steps: Sequence[Step]) -> dashboard.ThresholdsConfig:
    """Absolute threshold steps."""
    return (
        dashboard.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=colour) for value, colour in steps])
    )


def _per_series(
    builder: stat.Panel | bargauge.Panel | ts.Panel, overrides: Mapping[str, Sequence[Step]]
) -> None:
    for name, steps in overrides.items():
        value = thresholds(steps).build()
        builder.override_by_name(
            name, [models.DynamicConfigValue(id_val="thresholds", value=value)]
        )


def query(expr: str, legend: str, *, instant: bool) -> prometheus.Dataquery:
    """One Prometheus target (refId A)."""
    target = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id("A")
    target = target.datasource(DATASOURCE)
    return target.instant() if instant else target.range()


def build(
    family: Family,
    *,
    board: str,
    key: str,
    expr: str,
    legend: str,
    steps: Sequence[Step],
    overrides: Mapping[str, Sequence[Step]] | None = None,
    width: int,
    height: int,
    kind: PanelKind | None = None,
    title: str | None = None,
) -> PanelBuilder:
    """The panel of ``family`` drawing ``expr`` (its kind from the hint unless given)."""
    kind = kind or family.panel
    if kind is PanelKind.STAT:
        coloured = len(steps) > 1  # one step: no thresholds, the plain text colour
        builder: stat.Panel | bargauge.Panel | ts.Panel = (
            stat.Panel()
            .graph_mode(common_models.BigValueGraphMode.NONE)
            .color_mode(
                common_models.BigValueColorMode.BACKGROUND
                if coloured
                else common_models.BigValueColorMode.NONE
            )
            .text_mode(common_models.BigValueTextMode.AUTO)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        )
        instant = True
    elif kind is PanelKind.BAR_GAUGE:
        builder = (
            bargauge.Panel()
            .display_mode(common_models.BarGaugeDisplayMode.BASIC)
            .orientation(common_models.VizOrientation.HORIZONTAL)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        )
        instant = True
    else:
        builder = ts.Panel().fill_opacity(10).show_points(common_models.VisibilityMode.NEVER)
        instant = False
    builder = (
        builder.id(panel_id(board, key))
        .title(title or family.title)
        .description(family.help)
        .datasource(DATASOURCE)
        .unit(unit(family))
        .thresholds(thresholds(steps))
        .span(width)
        .height(height)
        .with_target(query(expr, legend, instant=instant))
    )
    if family.unit is Unit.RATIO and family.type is MetricType.GAUGE:
        builder = builder.min(0).max(1)
    _per_series(builder, overrides or {})
    return builder


def row(title: str, *, board: str, key: str, repeat: str | None = None) -> dashboard.Row:
    """A row (expanded) with a stable id; ``repeat`` repeats it per value of a variable."""
    builder = dashboard.Row(title).id(panel_id(board, f"row/{key}"))
    return builder.repeat(repeat) if repeat else builder

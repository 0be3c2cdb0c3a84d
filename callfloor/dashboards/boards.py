"""The boards: which families each draws, picked by their hints, and how they are laid out.

- **Call floor** (:func:`floor`): a "Sites" row of stats for the selected sites, then a
  row per selected queue (Grafana repeats it through the ``queue`` variable) of stats
  for that queue, in the window the ``window`` variable picks. Every family whose
  board is ``floor`` is on it: a queue family in the queue rows, any other in "Sites".
- **Agents**, **Operations**, **Alerts** (:func:`sectioned`): a row per hint section,
  a panel per family whose board it is, in catalogue order. A family added to the
  catalogue without hints lands on Operations (service and processor families) in the
  "Other" row; a board with no family (Alerts, until alert families exist) is not
  written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as models

from callfloor.config import Config
from callfloor.dashboards import panels, promql, thresholds
from callfloor.metrics.catalogue import CATALOGUE, Board, Family, PanelKind

TAG: Final = "callfloor"
REFRESH: Final = "10s"
Variable = cogbuilder.Builder[models.VariableModel]
ALL: Final = ".*"  # what a variable's "All" stands for in a regex matcher

# Panel sizes on Grafana's 24-column grid: (width, height).
_SIZES: Final = {
    PanelKind.STAT: (4, 4),
    PanelKind.BAR_GAUGE: (8, 8),
    PanelKind.TIMESERIES: (8, 7),
}


@dataclass(frozen=True, slots=True)
class Layout:
    """One sectioned board: its uid, title, what it is for, variables and row order."""

    board: Board
    uid: str
    title: str
    description: str
    variables: tuple[str, ...]
    sections: tuple[str, ...]  # first, in this order; others follow sorted, "Other" last


AGENTS: Final = Layout(
    Board.AGENTS,
    "callfloor-agents",
    "Agents",
    "Agents by state per site and queue, idle-time violations, and per agent (with "
    "[metrics] per_agent_series = true) the longest spells and the most not-ready time.",
    ("site", "queue", "team"),
    ("By state", "Violations", "Per agent"),
)
OPERATIONS: Final = Layout(
    Board.OPERATIONS,
    "callfloor-operations",
    "Operations",
    "callfloor itself: health, ingest by source, rejections and lateness, processing "
    "time, the store and checkpoints, partitions, sources and sinks.",
    (),
    (
        "Health",
        "Ingest",
        "Rejections and lateness",
        "Processing",
        "Store and checkpoints",
        "Partitions",
        "Sources and sinks",
    ),
)
ALERTS: Final = Layout(
    Board.ALERTS,
    "callfloor-alerts",
    "Alerts",
    "Alerts raised for the floor: by rule and state, how rules are evaluated, and how "
    "notifications reach the sinks.",
    ("site", "queue"),
    ("Alerts", "Evaluation", "Delivery"),
)


def _variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(panels.DATASOURCE)
        .multi(True)
        .include_all(True)
        .all_value(ALL)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )


def _windows(config: Config) -> list[str]:
    return [name for name, _ in config.rolling_windows] + ["interval", "today"]


def _variables(names: Sequence[str], config: Config) -> list[Variable]:
    out: list[Variable] = [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
    ]
    for name in names:
        if name == "site":
            out.append(_variable("site", "Site", "label_values(callfloor_queue_info, site)"))
        elif name == "queue":
            query = 'label_values(callfloor_queue_info{site=~"$site"}, queue)'
            out.append(_variable("queue", "Queue", query))
        elif name == "team":
            out.append(_variable("team", "Team", "label_values(callfloor_agent_info, team)"))
        elif name == "window":
            windows = _windows(config)
            first = models.VariableOption(selected=True, text=windows[0], value=windows[0])
            out.append(
                dashboard.CustomVariable("window")
                .label("Window")
                .values(",".join(windows))
                .current(first)
            )
    return out


def _base(
    uid: str, title: str, description: str, variables: Sequence[str], config: Config
) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .refresh(REFRESH)
        .time("now-1h", "now")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(
            dashboard.DashboardLink("callfloor boards")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for variable in _variables(variables, config):
        board = board.with_variable(variable)
    return board


def _split_by(family: Family) -> tuple[str, ...]:
    """The labels a panel shows one series per: all but ``window`` (a variable picks it)."""
    return tuple(label for label in family.labels if label != "window")


def _panel(
    family: Family,
    layout_uid: str,
    variables: Sequence[str],
    config: Config,
    *,
    kind: PanelKind | None = None,
    size: tuple[int, int] | None = None,
    per_queue: bool = False,
) -> panels.PanelBuilder:
    kind = kind or family.panel
    by = _split_by(family)
    expr = promql.expression(family, by, variables)
    if kind is PanelKind.BAR_GAUGE and "agent" in by:
        expr = promql.top(expr)
    width, height = size or _SIZES[kind]
    policy = thresholds.default_policy(config)
    overrides = thresholds.per_queue(family.hints.thresholds, config) if per_queue else None
    return panels.build(
        family,
        board=layout_uid,
        key=family.name,
        expr=expr,
        legend=promql.legend(by, family.title),
        steps=thresholds.steps(family.hints.thresholds, policy),
        overrides=overrides,
        width=width,
        height=height,
        kind=kind,
    )


def _drawn(board: Board) -> list[Family]:
    return [f for f in CATALOGUE if f.board is board and f.panel is not PanelKind.NONE]


FLOOR_UID: Final = "callfloor-floor"
FLOOR_VARIABLES: Final = ("site", "queue", "window")


def floor(config: Config) -> dashboard.Dashboard:
    """The "Call floor" board: sites, then a row per queue (see the module docstring)."""
    families = _drawn(Board.FLOOR)
    queue = [f for f in families if "queue" in f.labels]
    sites = [f for f in families if "queue" not in f.labels]
    board = _base(
        FLOOR_UID,
        "Call floor",
        "Service level, abandons, ASA, AHT, calls waiting, longest wait, occupancy and "
        "Erlang C staffing per site and per queue, in the window picked above. Colours: "
        "service level red below the queue's configured target, amber within 5 points; "
        "waits amber from half the queue's SL threshold, red from it.",
        FLOOR_VARIABLES,
        config,
    )
    if sites:
        board = board.with_row(panels.row("Sites", board=FLOOR_UID, key="sites"))
        width = max(3, 24 // len(sites))
        for family in sites:
            board = board.with_panel(
                _panel(family, FLOOR_UID, FLOOR_VARIABLES, config, size=(width, 5))
            )
    if queue:
        board = board.with_row(
            panels.row("Queue $queue", board=FLOOR_UID, key="queue", repeat="queue")
        )
        width = max(3, 24 // len(queue))
        for family in queue:
            board = board.with_panel(
                _panel(family, FLOOR_UID, FLOOR_VARIABLES, config, size=(width, 4), per_queue=True)
            )
    return board


def _section_order(layout: Layout, families: Sequence[Family]) -> list[str]:
    present = {f.section for f in families}
    first = [s for s in layout.sections if s in present]
    rest = sorted(present - set(first) - {"Other"})
    return first + rest + (["Other"] if "Other" in present else [])


def sectioned(layout: Layout, config: Config) -> dashboard.Dashboard | None:
    """A board of rows by hint section (see the module docstring); None when empty."""
    families = _drawn(layout.board)
    if not families:
        return None
    board = _base(layout.uid, layout.title, layout.description, layout.variables, config)
    for section in _section_order(layout, families):
        board = board.with_row(panels.row(section, board=layout.uid, key=section))
        for family in families:
            if family.section == section:
                board = board.with_panel(_panel(family, layout.uid, layout.variables, config))
    return board

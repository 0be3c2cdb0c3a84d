"""The Grafana boards generated from the catalogue: committed as generated, deterministic,
stable, driven by the families' hints and the configuration's thresholds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import config

from callfloor import dashboards
from callfloor.dashboards import boards, promql
from callfloor.metrics import catalogue
from callfloor.metrics.catalogue import (
    Board,
    Family,
    Group,
    Hints,
    MetricType,
    PanelKind,
    Unit,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "grafana" / "dashboards"
DEPLOY_CONFIG = ROOT / "deploy" / "callfloor.toml"


def _boards(cfg: Any = None) -> dict[str, dict[str, Any]]:
    out = dashboards.generate(cfg if cfg is not None else config())
    return {name: json.loads(text) for name, text in out.items()}


def _panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    [found] = [p for p in board["panels"] if p.get("title") == title]
    return found


def _with_extra_family(monkeypatch: pytest.MonkeyPatch, family: Family) -> None:
    """The catalogue with ``family`` first, as another branch might add one."""
    monkeypatch.setattr(boards, "CATALOGUE", (family, *catalogue.CATALOGUE))


def test_the_committed_boards_are_what_the_generator_writes() -> None:
    """deploy/grafana/dashboards holds exactly the generator's output for the deployment's
    configuration (regenerate with `make dashboards`)."""
    problems = dashboards.check(COMMITTED, dashboards.board_config(DEPLOY_CONFIG))
    assert problems == [], "run `make dashboards`: " + "; ".join(problems)


def test_generation_is_deterministic_with_sorted_keys() -> None:
    """Two generations give the same bytes, with keys sorted and a final newline."""
    first = dashboards.generate(config())
    assert first == dashboards.generate(config())
    for text in first.values():
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_the_boards_are_floor_agents_operations_and_alerts() -> None:
    """Four boards: the alert families (callfloor_alerts, evaluation, delivery) bring
    the Alerts board."""
    assert set(_boards()) == {
        "callfloor-floor.json",
        "callfloor-agents.json",
        "callfloor-operations.json",
        "callfloor-alerts.json",
    }


def test_a_family_on_the_alerts_board_brings_the_alerts_board(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once a family's hint names the Alerts board, callfloor-alerts.json is written."""
    firing = Family(
        "callfloor_alerts_firing",
        MetricType.GAUGE,
        "Alerts firing now.",
        ("rule",),
        Unit.NONE,
        Group.SERVICE,
        hints=Hints(Board.ALERTS, "Firing", PanelKind.STAT),
    )
    _with_extra_family(monkeypatch, firing)
    alerts = _boards()["callfloor-alerts.json"]
    panel = _panel(alerts, "Alerts firing")
    assert panel["targets"][0]["expr"] == "sum by (rule) (callfloor_alerts_firing)"


def test_a_family_without_hints_lands_on_operations_and_moves_no_other_panel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A service counter added with no hints is a rate in Operations' "Other" row, and
    every other panel keeps its id and place."""
    before = _boards()
    _with_extra_family(
        monkeypatch,
        Family(
            "callfloor_widgets_lost_total",
            MetricType.COUNTER,
            "Widgets lost.",
            ("reason",),
            Unit.NONE,
            Group.SERVICE,
        ),
    )
    after = _boards()
    ops = after["callfloor-operations.json"]
    panel = _panel(ops, "Widgets lost")
    assert panel["targets"][0]["expr"] == (
        "sum by (reason) (rate(callfloor_widgets_lost_total[$__rate_interval]))"
    )
    rows = [p["title"] for p in ops["panels"] if p["type"] == "row"]
    assert rows[-1] == "Other"
    old = {p["id"]: p["title"] for p in before["callfloor-operations.json"]["panels"]}
    new = {p["id"]: p["title"] for p in ops["panels"]}
    assert old.items() <= new.items()
    assert after["callfloor-floor.json"] == before["callfloor-floor.json"]


def test_panel_ids_are_unique_on_every_board() -> None:
    """No two panels (rows included) of a board share an id."""
    for name, board in _boards().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name


def test_service_level_thresholds_come_from_each_queues_target() -> None:
    """The floor's service-level stat: red below the default target, amber within 5
    points, green from it; a queue with its own target gets its own steps."""
    cfg = config({"queues": {"vip": {"channel": "voice", "sl_target": 0.9}, "std": {}}})
    floor = _boards(cfg)["callfloor-floor.json"]
    queue_panels = [p for p in floor["panels"] if p.get("title") == "Service level"]
    panel = next(p for p in queue_panels if "queue" in p["targets"][0]["expr"])
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps == [
        {"color": "red", "value": None},
        {"color": "orange", "value": 0.75},
        {"color": "green", "value": 0.8},
    ]
    [override] = panel["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byName", "options": "vip"}
    [prop] = override["properties"]
    assert prop["id"] == "thresholds"
    assert [s["value"] for s in prop["value"]["steps"]] == [None, 0.85, 0.9]


def test_wait_thresholds_come_from_each_queues_sl_threshold() -> None:
    """Longest wait: amber from half the queue's SL threshold, red from it."""
    cfg = config({"queues": {"slow": {"channel": "voice", "sl_threshold_s": 60}}})
    floor = _boards(cfg)["callfloor-floor.json"]
    panel = next(
        p
        for p in floor["panels"]
        if p.get("title") == "Longest wait" and "queue" in p["targets"][0]["expr"]
    )
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 10.0, 20.0]
    [override] = panel["fieldConfig"]["overrides"]
    assert [s["value"] for s in override["properties"][0]["value"]["steps"]] == [
        None,
        30.0,
        60.0,
    ]


def test_the_floor_repeats_a_row_per_queue_in_the_chosen_window() -> None:
    """The queue row repeats through $queue; window families read $window, whose values
    are the configured rolling windows, then interval and today."""
    cfg = config({"windows": {"rolling": ["5m", "30m"]}})
    floor = _boards(cfg)["callfloor-floor.json"]
    [queue_row] = [p for p in floor["panels"] if p.get("repeat") == "queue"]
    assert queue_row["type"] == "row"
    window = next(v for v in floor["templating"]["list"] if v["name"] == "window")
    assert window["query"] == "5m,30m,interval,today"
    assert window["current"]["value"] == "5m"
    sl = _panel_by_expr(floor, "callfloor_queue_service_level_ratio")
    assert 'window="$window"' in sl and 'queue=~"$queue"' in sl


def _panel_by_expr(board: dict[str, Any], name: str) -> str:
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    [expr] = [e for e in exprs if name + "{" in e]
    return expr


def test_every_query_reads_the_datasource_variable() -> None:
    """Every panel and target queries the Prometheus the datasource variable picks."""
    for board in _boards().values():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_family_named_in_a_query_is_in_the_catalogue() -> None:
    """The boards query only catalogue families (and their _sum/_count/_bucket samples)."""
    names = set(catalogue.BY_NAME)
    for board in _boards().values():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                for used in re.findall(r"callfloor_[a-z0-9_]+", target["expr"]):
                    base = re.sub(r"_(sum|count|bucket)$", "", used)
                    assert used in names or base in names, used


def test_expressions_by_family_type() -> None:
    """A counter is a rate, a summary its mean, a histogram a quantile, a point in time
    its age, a gauge as is; each combined by the family's aggregation."""

    def fam(kind: MetricType, unit: Unit = Unit.NONE, name: str = "callfloor_x") -> Family:
        return Family(name, kind, "x", ("queue",), unit, Group.SERVICE)

    assert promql.expression(fam(MetricType.COUNTER), ("queue",), ("queue",)) == (
        'sum by (queue) (rate(callfloor_x{queue=~"$queue"}[$__rate_interval]))'
    )
    assert promql.expression(fam(MetricType.SUMMARY, Unit.SECONDS), ()) == (
        "sum (rate(callfloor_x_sum[$__rate_interval])) / "
        "sum (rate(callfloor_x_count[$__rate_interval]))"
    )
    assert promql.expression(fam(MetricType.HISTOGRAM, Unit.SECONDS), ("queue",)) == (
        "histogram_quantile(0.95, sum by (le, queue) (rate(callfloor_x_bucket[$__rate_interval])))"
    )
    assert promql.expression(fam(MetricType.GAUGE, Unit.UNIX_SECONDS), ()) == (
        "time() - min (callfloor_x)"
    )
    assert promql.expression(fam(MetricType.GAUGE, Unit.RATIO), ("queue",)) == (
        "max by (queue) (callfloor_x)"
    )

"""The metric catalogue: one consistent, conventional description of every family."""

from __future__ import annotations

import re

from callfloor.metrics.catalogue import (
    BY_NAME,
    CATALOGUE,
    LABELS,
    WINDOW_COUNTS,
    WINDOW_RATES,
    Group,
    MetricType,
    Unit,
    families,
    rate_family,
    window_count_family,
)


def test_family_names_are_unique() -> None:
    """No two families share a name."""
    names = [f.name for f in CATALOGUE]
    assert len(names) == len(set(names)) == len(BY_NAME)


def test_names_follow_prometheus_conventions() -> None:
    """snake_case with a callfloor_ prefix; _total only and always on counters; base units."""
    for f in CATALOGUE:
        assert re.fullmatch(r"callfloor_[a-z0-9_]+", f.name), f.name
        assert f.name.endswith("_total") == (f.type is MetricType.COUNTER), f.name
        assert not re.search(r"_(percent|ms|milliseconds|minutes)(_total)?$", f.name), f.name


def test_units_agree_with_names() -> None:
    """A family in seconds, ratios or per second says so in its name, and only then."""
    for f in CATALOGUE:
        timed = f.unit in (Unit.SECONDS, Unit.UNIX_SECONDS)
        assert timed == ("_seconds" in f.name), f.name
        assert (f.unit is Unit.RATIO) == ("_ratio" in f.name), f.name
        assert (f.unit is Unit.PER_SECOND) == f.name.endswith("_per_second"), f.name


def test_every_family_has_help_text() -> None:
    """Each family has a non-empty one-line help."""
    for f in CATALOGUE:
        assert f.help.strip() and "\n" not in f.help, f.name


def test_every_label_is_described() -> None:
    """Each label any family uses has a meaning in LABELS, and LABELS has no stale entries."""
    used = {"le"}
    for f in CATALOGUE:
        used.update(f.labels)
        used.update(f.agent_labels or ())
    assert used == set(LABELS)


def test_labels_never_include_le_or_repeat() -> None:
    """Histogram labels are listed without le, and no family lists a label twice."""
    for f in CATALOGUE:
        for labels in (f.labels, f.agent_labels or ()):
            assert "le" not in labels and len(set(labels)) == len(labels), f.name


def test_window_families_exist_for_queues_and_sites() -> None:
    """Every window count and rate has a {queue, window} and a {site, window} family."""
    for scope in ("queue", "site"):
        for key, _ in WINDOW_COUNTS:
            assert BY_NAME[window_count_family(scope, key)].labels == (scope, "window")
        for key, _, unit, _ in WINDOW_RATES:
            assert BY_NAME[rate_family(scope, key)].unit is unit


def test_per_agent_families_carry_agent_and_team() -> None:
    """Every per-agent family is labelled by agent and team."""
    agent = families((Group.AGENT,))
    assert {f.name for f in agent} >= {"callfloor_agent_info", "callfloor_agent_state"}
    for f in agent:
        assert {"agent", "team"} <= set(f.labels), f.name
    assert BY_NAME["callfloor_agent_info"].labels == ("agent", "name", "team", "site")


def test_violations_active_gains_agent_label_per_agent() -> None:
    """callfloor_violations_active is {kind, severity}, or {agent, kind, severity} per agent."""
    f = BY_NAME["callfloor_violations_active"]
    assert f.label_names(per_agent=False) == ("kind", "severity")
    assert f.label_names(per_agent=True) == ("agent", "kind", "severity")
    assert BY_NAME["callfloor_violations_started_total"].label_names(per_agent=True) == (
        "kind",
        "severity",
    )


def test_groups_keep_exposition_order() -> None:
    """families() returns the catalogue order, so output order does not depend on the call."""
    chosen = families((Group.SERVICE, Group.QUEUE))
    assert chosen == [f for f in CATALOGUE if f.group in (Group.QUEUE, Group.SERVICE)]


def test_a_family_without_hints_gets_defaults_from_its_type_unit_and_group() -> None:
    """No hints: service and processor families on Operations in "Other", as a time
    series; counts summed across processes, ratios and durations the largest, points in
    time the oldest; info series drawn nowhere; the title from the name."""
    from callfloor.metrics.catalogue import Aggregation, Board, Family, PanelKind

    def fam(name: str, kind: MetricType, unit: Unit, group: Group) -> Family:
        return Family(name, kind, "x", (), unit, group)

    counter = fam("callfloor_widgets_lost_total", MetricType.COUNTER, Unit.NONE, Group.SERVICE)
    assert counter.board is Board.OPERATIONS and counter.section == "Other"
    assert counter.panel is PanelKind.TIMESERIES and counter.aggregation is Aggregation.SUM
    assert counter.title == "Widgets lost"
    ratio = fam("callfloor_queue_x_ratio", MetricType.GAUGE, Unit.RATIO, Group.QUEUE)
    assert ratio.board is Board.NONE and ratio.aggregation is Aggregation.MAX
    when = fam("callfloor_last_seconds", MetricType.GAUGE, Unit.UNIX_SECONDS, Group.SERVICE)
    assert when.aggregation is Aggregation.MIN
    info = fam("callfloor_thing_info", MetricType.GAUGE, Unit.NONE, Group.PROCESSOR)
    assert info.panel is PanelKind.NONE


def test_the_hints_put_the_supervisors_numbers_on_the_floor_board() -> None:
    """The floor board shows each queue's service level (coloured by its target), ASA,
    waiting calls and longest wait; health flags are stats that show the worst process."""
    from callfloor.metrics.catalogue import Aggregation, Board, PanelKind, Thresholds

    sl = BY_NAME["callfloor_queue_service_level_ratio"]
    assert sl.board is Board.FLOOR and sl.panel is PanelKind.STAT
    assert sl.hints.thresholds is Thresholds.SL_TARGET
    for name in (
        "callfloor_queue_asa_seconds",
        "callfloor_queue_waiting_calls",
        "callfloor_queue_longest_wait_seconds",
    ):
        assert BY_NAME[name].board is Board.FLOOR, name
    for name in ("callfloor_store_up", "callfloor_source_up", "callfloor_redis_floor_up"):
        up = BY_NAME[name]
        assert up.aggregation is Aggregation.MIN and up.hints.thresholds is Thresholds.HEALTH

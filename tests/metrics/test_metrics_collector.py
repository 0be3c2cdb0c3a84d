"""The floor collector, checked through the parsed text format against the document."""

from __future__ import annotations

import math
from typing import Any

import pytest
from helpers import config, decode, ev, processor
from metrics_util import AT, B, parse, samples, scenario, scenario_proc, scrape, value
from prometheus_client import Counter, generate_latest

from callfloor.metrics import (
    CONTENT_TYPE,
    FloorCollector,
    FloorRegistry,
    build_registry,
    render,
)
from callfloor.metrics.catalogue import BY_NAME, MetricType
from callfloor.processors.engine import FloorProcessor


def _doc(proc: FloorProcessor) -> Any:
    """The replay document as plain data, for indexing in assertions."""
    import msgspec

    return msgspec.to_builtins(proc.view.document())


def test_queue_service_level_matches_the_document() -> None:
    """The queue's service-level ratio per window is the replay document's value."""
    proc = scenario_proc()
    doc = _doc(proc)
    fams = scrape(proc)
    for window in ("15m", "60m", "interval", "today"):
        expected = doc["queues"]["sales"]["windows"][window]["service_level"]
        got = value(fams, "callfloor_queue_service_level_ratio", queue="sales", window=window)
        assert got == expected == 0.5


def test_queue_window_counts_and_rates_match_the_document() -> None:
    """Every windowed count and non-null rate of every queue equals the document's."""
    proc = scenario_proc()
    doc = _doc(proc)
    fams = scrape(proc)
    rates = {
        "service_level": "service_level_ratio",
        "abandon_rate": "abandon_ratio",
        "asa_s": "asa_seconds",
        "aht_s": "aht_seconds",
        "max_wait_s": "max_wait_seconds",
    }
    checked = 0
    for queue, qdoc in doc["queues"].items():
        for window, wdoc in qdoc["windows"].items():
            for key, expected in wdoc.items():
                name = (
                    f"callfloor_queue_{rates[key]}"
                    if key in rates
                    else f"callfloor_queue_window_{key}_calls"
                )
                assert value(fams, name, queue=queue, window=window) == expected, (name, window)
                checked += 1
    assert checked == 2 * 4 * 14


def test_site_values_match_the_document() -> None:
    """Site windows and live values are the document's roll-up, not recomputed."""
    proc = scenario_proc()
    site = _doc(proc)["sites"]["default"]
    fams = scrape(proc)
    for window, wdoc in site["windows"].items():
        assert (
            value(fams, "callfloor_site_service_level_ratio", site="default", window=window)
            == wdoc["service_level"]
        )
        assert (
            value(fams, "callfloor_site_window_offered_calls", site="default", window=window)
            == wdoc["offered"]
            == 4
        )
        assert (
            value(fams, "callfloor_site_max_wait_seconds", site="default", window=window)
            == wdoc["max_wait_s"]
        )
    live = site["live"]
    assert value(fams, "callfloor_site_waiting_calls", site="default") == live["waiting"] == 1
    assert (
        value(fams, "callfloor_site_longest_wait_seconds", site="default") == live["longest_wait_s"]
    )
    assert (
        value(fams, "callfloor_site_arrival_rate_per_second", site="default")
        == live["arrival_rate_per_s"]
    )
    for state, n in live["agents"].items():
        assert value(fams, "callfloor_site_agents", site="default", state=state) == n


def test_queue_live_values_match_the_document() -> None:
    """Waiting, longest wait, agents by state and Erlang values equal the document's live block."""
    proc = scenario_proc()
    live = _doc(proc)["queues"]["support"]["live"]
    fams = scrape(proc)
    assert value(fams, "callfloor_queue_waiting_calls", queue="support") == 1
    assert value(fams, "callfloor_queue_longest_wait_seconds", queue="support") == AT - (B + 5)
    assert live["agents"]
    for state, n in live["agents"].items():
        assert value(fams, "callfloor_queue_agents", queue="support", state=state) == n
    assert (
        value(fams, "callfloor_queue_required_agents", queue="support") == live["required_agents"]
    )
    assert (
        value(fams, "callfloor_queue_projected_service_level_ratio", queue="support")
        == live["projected_service_level"]
    )
    assert value(fams, "callfloor_queue_occupancy_ratio", queue="support") == live["occupancy"]


def test_queue_info_and_policy_come_from_the_configuration() -> None:
    """queue_info carries site and channel; target and threshold are the queue's policy."""
    cfg = config({"queues": {"chat1": {"site": "ber", "channel": "chat", "sl_target": 0.9}}})
    fams = scrape(processor([ev("call_queued", B, call_id="c", queue="chat1")], cfg))
    assert value(fams, "callfloor_queue_info", queue="chat1", site="ber", channel="chat") == 1
    assert value(fams, "callfloor_queue_service_level_target_ratio", queue="chat1") == 0.9
    assert value(fams, "callfloor_queue_service_level_threshold_seconds", queue="chat1") == 30


def test_queue_info_follows_the_site_of_the_first_call() -> None:
    """An unconfigured queue's info moves from its first scrape's site to its call's site."""
    cfg = config({"queues": {"q": {}}})
    proc = FloorProcessor(cfg)
    registry = build_registry(proc)
    before = parse(render(registry))
    assert samples(before, "callfloor_queue_info") == [
        {"queue": "q", "site": "default", "channel": "voice"}
    ]
    proc.apply(decode(ev("call_queued", B, call_id="c", queue="q", site="ny")))
    after = parse(render(registry))
    assert samples(after, "callfloor_queue_info") == [
        {"queue": "q", "site": "ny", "channel": "voice"}
    ]


def test_null_rates_have_no_sample() -> None:
    """A rate whose denominator is 0 is left out rather than exposed as NaN."""
    fams = scrape(scenario_proc())
    # support: nothing answered, abandoned or handled yet.
    for name in ("asa_seconds", "aht_seconds", "abandon_ratio", "max_wait_seconds"):
        assert value(fams, f"callfloor_queue_{name}", queue="support", window="15m") is None
    assert value(fams, "callfloor_queue_asa_seconds", queue="sales", window="15m") == 10.0
    assert all(not math.isnan(s.value) for f in fams.values() for s in f.samples)


def test_lifetime_counters_come_from_queue_totals() -> None:
    """The _total counters carry the queue's lifetime counts and sums in seconds."""
    fams = scrape(scenario_proc())
    assert value(fams, "callfloor_queue_offered_total", queue="sales") == 3
    assert value(fams, "callfloor_queue_short_abandoned_total", queue="sales") == 1
    assert value(fams, "callfloor_queue_sl_offered_total", queue="sales") == 2
    assert value(fams, "callfloor_queue_handled_total", queue="sales") == 1
    assert value(fams, "callfloor_queue_handle_seconds_total", queue="sales") == 120.0
    assert value(fams, "callfloor_queue_answered_wait_seconds_total", queue="sales") == 10.0


def test_counters_are_monotonic_across_collects() -> None:
    """No counter decreases between two scrapes, and new events raise them."""
    proc = scenario_proc()
    registry = build_registry(proc)
    before = parse(render(registry))
    for e in (
        ev("call_queued", AT + 1, call_id="c5", queue="sales"),
        ev("call_answered", AT + 3, call_id="c5", agent="a2"),
    ):
        proc.apply(decode(e))
    proc.tick(AT + 4000)  # the rolling windows empty; lifetime counters must not
    after = parse(render(registry))
    counters = [f for f in before.values() if f.type == "counter"]
    assert counters
    for fam in counters:
        for s in fam.samples:
            now = value(after, s.name, **s.labels)
            assert now is not None and now >= s.value, s
    assert value(after, "callfloor_queue_offered_total", queue="sales") == 4
    assert value(after, "callfloor_queue_window_offered_calls", queue="sales", window="15m") == 0


def test_wait_histogram_is_cumulative_with_the_sl_threshold_as_a_bound() -> None:
    """Buckets are cumulative, include le=T, and +Inf equals _count and the totals."""
    fams = scrape(scenario_proc())
    hist = fams["callfloor_queue_wait_seconds"]
    assert hist.type == "histogram"
    for outcome in ("answered", "abandoned"):
        buckets = [
            s
            for s in hist.samples
            if s.name.endswith("_bucket")
            and s.labels["queue"] == "sales"
            and s.labels["outcome"] == outcome
        ]
        values = [s.value for s in buckets]
        assert values == sorted(values)
        les = [s.labels["le"] for s in buckets]
        assert "20.0" in les and les[-1] == "+Inf"
        assert values[-1] == 1
        labels = {"queue": "sales", "outcome": outcome}
        assert value(fams, "callfloor_queue_wait_seconds_count", **labels) == 1
    answered = {"queue": "sales", "outcome": "answered"}
    abandoned = {"queue": "sales", "outcome": "abandoned"}
    # answered: 10 s wait -> first counted in le=10.0; abandoned: 30 s -> le=30.0
    assert value(fams, "callfloor_queue_wait_seconds_bucket", **answered, le="5.0") == 0
    assert value(fams, "callfloor_queue_wait_seconds_bucket", **answered, le="10.0") == 1
    assert value(fams, "callfloor_queue_wait_seconds_bucket", **abandoned, le="20.0") == 0
    assert value(fams, "callfloor_queue_wait_seconds_sum", **answered) == 10.0


def test_abandoned_wait_histogram_sums_the_counted_abandons() -> None:
    """The abandoned outcome's _sum is the wait of its one counted abandon (short ones excluded)."""
    fams = scrape(scenario_proc())
    labels = {"queue": "sales", "outcome": "abandoned"}
    assert value(fams, "callfloor_queue_wait_seconds_sum", **labels) == 30.0
    assert value(fams, "callfloor_queue_wait_seconds_count", **labels) == 1.0


def test_violations_started_counter_survives_their_end() -> None:
    """A violation that started and ended still counts in callfloor_violations_started_total."""
    proc = processor(
        [
            ev("agent_state", B, agent="a9", state="wrap_up"),
            ev("agent_state", B + 200, agent="a9", state="available"),
        ]
    )
    fams = scrape(proc)
    labels = {"kind": "wrap_up_exceeded", "severity": "warning"}
    assert value(fams, "callfloor_violations_started_total", **labels) == 1.0
    assert value(fams, "callfloor_violations_retracted_total", **labels) == 0.0
    assert value(fams, "callfloor_violations_active", **labels) == 0.0


def test_active_violations_by_kind_and_severity() -> None:
    """An agent not ready past the limit counts once; other known kinds show 0."""
    proc = processor([ev("agent_state", B, agent="a1", state="not_ready", reason="break")])
    proc.tick(B + 601)
    fams = scrape(proc)
    active = "callfloor_violations_active"
    assert value(fams, active, kind="not_ready_exceeded", severity="warning") == 1
    assert value(fams, active, kind="wrap_up_exceeded", severity="warning") == 0
    assert value(fams, active, kind="not_ready_daily_exceeded", severity="major") == 0
    proc.apply(decode(ev("agent_state", B + 700, agent="a1", state="available")))
    fams = scrape(proc)
    assert value(fams, active, kind="not_ready_exceeded", severity="warning") == 0


def test_zero_violation_series_follow_the_configuration() -> None:
    """Only kinds the configuration can raise get zero series (no missed-calls limit: none)."""
    cfg = config({"agents": {"missed_calls_max": 0, "daily_not_ready": ["30m"]}})
    fams = scrape(processor([ev("agent_state", B, agent="a1", state="available")], cfg))
    kinds = {(s["kind"], s["severity"]) for s in samples(fams, "callfloor_violations_active")}
    assert kinds == {
        ("not_ready_exceeded", "warning"),
        ("wrap_up_exceeded", "warning"),
        ("stale_agent", "warning"),
        ("not_ready_daily_exceeded", "minor"),
    }


def test_collect_reads_the_clock_without_ticking() -> None:
    """Scraping uses the processor clock as it is and leaves it unchanged."""
    proc = scenario_proc()
    fams = scrape(proc)
    assert proc.clock == AT
    assert value(fams, "callfloor_clock_seconds") == AT
    proc.tick(AT + 50)
    fams = scrape(proc)
    assert value(fams, "callfloor_queue_longest_wait_seconds", queue="support") == AT + 50 - (B + 5)


def test_scrape_before_any_event_has_no_time_based_samples() -> None:
    """A configured queue with no event and no tick yet exposes counters, not windows."""
    proc = FloorProcessor(config({"queues": {"sales": {}}}))
    fams = scrape(proc)
    assert value(fams, "callfloor_queue_offered_total", queue="sales") == 0
    assert not fams["callfloor_queue_window_offered_calls"].samples
    assert not fams["callfloor_site_waiting_calls"].samples
    assert value(fams, "callfloor_clock_seconds") is None


def test_processor_self_metrics() -> None:
    """Events by canonical type, rejections by reason and the engine counters are exposed."""
    proc = scenario_proc()
    proc.count_rejected("missing_field")
    proc.apply(decode(ev("call_abandoned", AT + 1, call_id="nope")))  # orphaned
    proc.apply(decode(ev("call_queued", AT + 2, call_id="c9", queue="sales", id="e1")))
    proc.apply(decode(ev("call_queued", AT + 2, call_id="c9", queue="sales", id="e1")))
    proc.apply(decode(ev("call_queued", AT - 60, call_id="c8", queue="sales")))  # late
    fams = scrape(proc)
    stats = proc.view.stats()
    assert value(fams, "callfloor_events_total", type="call_queued") == 6
    assert value(fams, "callfloor_events_total", type="call_routed") == 0
    assert value(fams, "callfloor_events_rejected_total", reason="missing_field") == 1
    assert value(fams, "callfloor_events_rejected_total", reason="invalid_ts") == 0
    assert value(fams, "callfloor_events_rejected_total", reason="too_many_queues") == 0
    assert value(fams, "callfloor_events_orphaned_total") == 1
    assert value(fams, "callfloor_events_duplicate_total") == 1
    assert value(fams, "callfloor_events_late_total") == 1
    assert value(fams, "callfloor_open_legs") == stats.open_legs == 3
    assert value(fams, "callfloor_timers_pending") == stats.timers_pending


def test_refused_events_are_counted_by_reason() -> None:
    """An event over a [limits] cap shows in callfloor_events_rejected_total by its reason."""
    proc = processor([], config({"limits": {"max_queues": 1}}))
    proc.apply(decode(ev("call_queued", B, call_id="c1", queue="q1")))
    assert proc.apply(decode(ev("call_queued", B + 1, call_id="c2", queue="q2"))) is not None
    fams = scrape(proc)
    assert value(fams, "callfloor_events_rejected_total", reason="too_many_queues") == 1
    assert value(fams, "callfloor_queue_offered_total", queue="q2") is None


def test_expired_state_is_counted() -> None:
    """Calls forgotten by live retention show in callfloor_state_expired_total by kind."""
    proc = FloorProcessor(config({"limits": {"max_lateness": "1h"}}), live=True)
    for e in (
        ev("call_queued", B, call_id="c1", queue="q"),
        ev("call_answered", B + 5, call_id="c1", agent="a"),  # never ends
    ):
        proc.apply(decode(e))
    before = scrape(proc)
    assert value(before, "callfloor_state_expired_total", kind="conversations") == 0.0
    proc.tick(B + 7200)
    fams = scrape(proc)
    assert value(fams, "callfloor_state_expired_total", kind="conversations") == 1.0
    assert value(fams, "callfloor_state_expired_total", kind="pending_handling") == 0.0


def test_label_values_are_escaped() -> None:
    """Queue names with quotes, backslashes and newlines survive the text format."""
    name = 'sa"les\\x\ny'
    proc = processor([ev("call_queued", B, call_id="c", queue=name)])
    registry = build_registry(proc)
    body = render(registry)
    assert body == generate_latest(registry)
    assert value(parse(body), "callfloor_queue_offered_total", queue=name) == 1


@pytest.mark.parametrize("per_agent", [False, True])
def test_every_sample_matches_its_catalogue_family(per_agent: bool) -> None:
    """Each exposed family is in the catalogue with its type, and each sample has its labels."""
    proc = processor(
        [*scenario(), ev("agent_state", B + 140, agent="a2", state="not_ready", reason="x")]
    )
    proc.tick(AT + 900)  # a2's not-ready spell is over its limit: a violation is active
    fams = scrape(proc, per_agent_series=per_agent)
    seen_labels = set()
    for name, fam in fams.items():
        spec = BY_NAME.get(name) or BY_NAME[name + "_total"]
        assert fam.type == spec.type.value
        expected = set(spec.label_names(per_agent))
        for s in fam.samples:
            extra = {"le"} if s.name.endswith("_bucket") else set()
            assert set(s.labels) == expected | extra, (s.name, s.labels)
            seen_labels.add(name)
    assert "callfloor_violations_active" in seen_labels


def test_exposed_families_are_the_collectors_families() -> None:
    """Every family the collector announces is in the output, in catalogue order."""
    proc = scenario_proc()
    collector = FloorCollector(proc, per_agent_series=True)
    body = generate_latest(_Only(collector)).decode()
    types = [line.split()[2] for line in body.splitlines() if line.startswith("# TYPE")]
    assert types == [f.name for f in collector.families()]
    assert all(
        f.type is not MetricType.COUNTER or f.name.endswith("_total") for f in collector.families()
    )


class _Only(FloorRegistry):
    def __init__(self, collector: FloorCollector) -> None:
        super().__init__()
        self.register(collector)


def test_fast_render_is_identical_to_generate_latest() -> None:
    """render() on a FloorRegistry writes exactly the bytes generate_latest writes."""
    registry = build_registry(scenario_proc(), per_agent_series=True)
    assert render(registry) == generate_latest(registry)
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_render_keeps_other_collectors_of_the_registry() -> None:
    """Collectors registered next to the floor collector are rendered too, in order."""
    registry = build_registry(scenario_proc())
    Counter("callfloor_test_extra", "An extra counter.", registry=registry).inc()
    body = render(registry)
    assert body == generate_latest(registry)
    assert value(parse(body), "callfloor_test_extra_total") == 1.0


def test_registry_refuses_a_second_floor_collector() -> None:
    """describe() names the families, so a duplicate registration fails loudly."""
    proc = scenario_proc()
    registry = build_registry(proc)
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(FloorCollector(proc))
    assert isinstance(registry, FloorRegistry)


@pytest.mark.parametrize("enabled", [True, False])
def test_render_leaves_the_garbage_collector_as_it_was(enabled: bool) -> None:
    """render() pauses collection for the scrape only and restores the previous state."""
    import gc

    registry = build_registry(scenario_proc())
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()
        render(registry)
        assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()


def test_queues_created_by_events_alone_are_exposed_up_to_the_limit() -> None:
    """Configured queues always have series; event-created ones only the first
    max_unconfigured_queues of them, the rest counted as omitted but kept in the site."""
    cfg = config(
        {"queues": {"z-configured": {"site": "s"}}, "metrics": {"max_unconfigured_queues": 2}}
    )
    proc = processor(
        [
            ev("call_queued", B + i, call_id=f"c{i}", queue=name, site="s")
            for i, name in enumerate(["q-first", "q-second", "q-third", "z-configured"])
        ],
        cfg,
    )
    fams = scrape(proc)
    exposed = {s["queue"] for s in samples(fams, "callfloor_queue_offered_total")}
    assert exposed == {"q-first", "q-second", "z-configured"}
    assert value(fams, "callfloor_metrics_queues_omitted") == 1
    assert value(fams, "callfloor_site_window_offered_calls", site="s", window="today") == 4

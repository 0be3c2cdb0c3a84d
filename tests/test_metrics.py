"""Prometheus exposition (callfloor.metrics) checked through the parsed text format."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from helpers import T0, config, decode, ev, processor
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from callfloor.config import Config
from callfloor.metrics import (
    CONTENT_TYPE,
    FloorCollector,
    FloorRegistry,
    ServiceStats,
    build_registry,
    render,
    render_service,
)
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document as _build_document
from callfloor.service import FloorService, IngestStats

# An interval start, so the whole scenario lies in one site interval as well.
B = T0 + 200.0
AT = B + 200.0


def _scenario() -> list[dict[str, Any]]:
    """Two queues on one site: a met answer, a missed abandon, a short abandon, a waiter."""
    return [
        ev("agent_state", B, agent="a1", state="available", queues=["sales"]),
        ev("agent_state", B, agent="a2", state="available", queues=["sales", "support"]),
        ev("call_queued", B, call_id="c1", queue="sales"),
        ev("call_queued", B + 1, call_id="c2", queue="sales"),
        ev("call_queued", B + 2, call_id="c3", queue="sales"),
        ev("call_abandoned", B + 4, call_id="c3"),  # wait 2 s: short abandon
        ev("call_queued", B + 5, call_id="c4", queue="support"),  # still waiting
        ev("call_answered", B + 10, call_id="c1", agent="a1"),  # wait 10 s: met
        ev("agent_state", B + 10, agent="a1", state="on_call"),
        ev("call_abandoned", B + 31, call_id="c2"),  # wait 30 s: abandoned, missed
        ev("call_ended", B + 100, call_id="c1", agent="a1"),
        ev("agent_state", B + 100, agent="a1", state="wrap_up"),
        ev("agent_state", B + 130, agent="a1", state="available"),  # handled: 120 s
    ]


def _proc(cfg: Config | None = None, at: float = AT) -> FloorProcessor:
    proc = processor(_scenario(), cfg)
    proc.tick(at)
    return proc


def build_document(proc: FloorProcessor) -> dict[str, Any]:
    """The replay document, typed loosely for indexing in assertions."""
    return _build_document(proc)


def _parse(body: bytes) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}


def _scrape(proc: FloorProcessor, **kwargs: Any) -> dict[str, Metric]:
    return _parse(render(build_registry(proc, **kwargs)))


def _value(families: dict[str, Metric], sample: str, **labels: str) -> float | None:
    """The value of the one sample with this name and exactly these labels, else None."""
    found = [
        s.value
        for f in families.values()
        for s in f.samples
        if s.name == sample and s.labels == labels
    ]
    assert len(found) <= 1, (sample, labels, found)
    return found[0] if found else None


def test_queue_service_level_matches_the_document() -> None:
    """The queue's service-level ratio per window is the replay document's value."""
    proc = _proc()
    doc = build_document(proc)
    fams = _scrape(proc)
    for window in ("15m", "60m", "interval", "today"):
        expected = doc["queues"]["sales"]["windows"][window]["service_level"]
        got = _value(fams, "callfloor_queue_service_level_ratio", queue="sales", window=window)
        assert got == expected == 0.5


def test_queue_window_counts_and_rates_match_the_document() -> None:
    """Every windowed count and non-null rate of every queue equals the document's."""
    proc = _proc()
    doc = build_document(proc)
    fams = _scrape(proc)
    rates = {
        "service_level": "service_level_ratio",
        "abandon_rate": "abandon_ratio",
        "asa_s": "asa_seconds",
        "aht_s": "aht_seconds",
        "max_wait_s": "max_wait_seconds",
    }
    for queue, qdoc in doc["queues"].items():
        for window, wdoc in qdoc["windows"].items():
            for key, value in wdoc.items():
                name = (
                    f"callfloor_queue_{rates[key]}"
                    if key in rates
                    else f"callfloor_queue_window_{key}_calls"
                )
                assert _value(fams, name, queue=queue, window=window) == value, (name, window)


def test_site_values_match_the_document() -> None:
    """Site windows and live values are the document's roll-up, not recomputed."""
    proc = _proc()
    site = build_document(proc)["sites"]["default"]
    fams = _scrape(proc)
    for window, wdoc in site["windows"].items():
        assert (
            _value(fams, "callfloor_site_service_level_ratio", site="default", window=window)
            == wdoc["service_level"]
        )
        assert (
            _value(fams, "callfloor_site_window_offered_calls", site="default", window=window)
            == wdoc["offered"]
            == 4
        )
        assert (
            _value(fams, "callfloor_site_max_wait_seconds", site="default", window=window)
            == wdoc["max_wait_s"]
        )
    live = site["live"]
    assert _value(fams, "callfloor_site_waiting_calls", site="default") == live["waiting"] == 1
    assert (
        _value(fams, "callfloor_site_longest_wait_seconds", site="default")
        == live["longest_wait_s"]
    )
    assert (
        _value(fams, "callfloor_site_arrival_rate_per_second", site="default")
        == live["arrival_rate_per_s"]
    )
    for state, n in live["agents"].items():
        assert _value(fams, "callfloor_site_agents", site="default", state=state) == n


def test_queue_live_values_match_the_document() -> None:
    """Waiting, longest wait, agents by state and Erlang values equal the document's live block."""
    proc = _proc()
    live = build_document(proc)["queues"]["support"]["live"]
    fams = _scrape(proc)
    assert _value(fams, "callfloor_queue_waiting_calls", queue="support") == 1
    assert _value(fams, "callfloor_queue_longest_wait_seconds", queue="support") == AT - (B + 5)
    for state, n in live["agents"].items():
        assert _value(fams, "callfloor_queue_agents", queue="support", state=state) == n
    assert (
        _value(fams, "callfloor_queue_required_agents", queue="support") == live["required_agents"]
    )
    assert (
        _value(fams, "callfloor_queue_projected_service_level_ratio", queue="support")
        == live["projected_service_level"]
    )


def test_null_rates_have_no_sample() -> None:
    """A rate whose denominator is 0 is left out rather than exposed as NaN."""
    fams = _scrape(_proc())
    # support: nothing answered, abandoned or handled yet.
    for name in ("asa_seconds", "aht_seconds", "abandon_ratio", "max_wait_seconds"):
        assert _value(fams, f"callfloor_queue_{name}", queue="support", window="15m") is None
    assert _value(fams, "callfloor_queue_asa_seconds", queue="sales", window="15m") == 10.0
    assert all(not math.isnan(s.value) for f in fams.values() for s in f.samples)


def test_lifetime_counters_come_from_queue_totals() -> None:
    """The _total counters carry the queue's lifetime counts and µs sums in seconds."""
    fams = _scrape(_proc())
    assert _value(fams, "callfloor_queue_offered_total", queue="sales") == 3
    assert _value(fams, "callfloor_queue_short_abandoned_total", queue="sales") == 1
    assert _value(fams, "callfloor_queue_sl_offered_total", queue="sales") == 2
    assert _value(fams, "callfloor_queue_handled_total", queue="sales") == 1
    assert _value(fams, "callfloor_queue_handle_seconds_total", queue="sales") == 120.0
    assert _value(fams, "callfloor_queue_answered_wait_seconds_total", queue="sales") == 10.0


def test_counters_are_monotonic_across_collects() -> None:
    """No counter decreases between two scrapes, and new events raise them."""
    proc = _proc()
    registry = build_registry(proc)
    before = _parse(render(registry))
    for e in (
        ev("call_queued", AT + 1, call_id="c5", queue="sales"),
        ev("call_answered", AT + 3, call_id="c5", agent="a2"),
    ):
        proc.apply(decode(e))
    proc.tick(AT + 4000)  # the rolling windows empty; lifetime counters must not
    after = _parse(render(registry))
    counters = [f for f in before.values() if f.type == "counter"]
    assert counters
    for fam in counters:
        for s in fam.samples:
            now = _value(after, s.name, **s.labels)
            assert now is not None and now >= s.value, s
    assert _value(after, "callfloor_queue_offered_total", queue="sales") == 4
    assert _value(after, "callfloor_queue_window_offered_calls", queue="sales", window="15m") == 0


def test_wait_histogram_is_cumulative_with_the_sl_threshold_as_a_bound() -> None:
    """Buckets are cumulative, include le=T, and +Inf equals _count and the totals."""
    fams = _scrape(_proc())
    hist = fams["callfloor_queue_wait_seconds"]
    assert hist.type == "histogram"
    for outcome, total in (("answered", 1), ("abandoned", 1)):
        buckets = [
            s
            for s in hist.samples
            if s.name.endswith("_bucket") and s.labels["queue"] == "sales"
            if s.labels["outcome"] == outcome
        ]
        values = [s.value for s in buckets]
        assert values == sorted(values)
        les = [s.labels["le"] for s in buckets]
        assert "20.0" in les and les[-1] == "+Inf"
        assert values[-1] == total
        assert (
            _value(fams, "callfloor_queue_wait_seconds_count", queue="sales", outcome=outcome)
            == total
        )
    # answered: 10 s wait -> first counted in le=10.0; abandoned: 30 s -> le=30.0
    assert (
        _value(
            fams, "callfloor_queue_wait_seconds_bucket", queue="sales", outcome="answered", le="5.0"
        )
        == 0
    )
    assert (
        _value(
            fams,
            "callfloor_queue_wait_seconds_bucket",
            queue="sales",
            outcome="answered",
            le="10.0",
        )
        == 1
    )
    assert (
        _value(
            fams,
            "callfloor_queue_wait_seconds_bucket",
            queue="sales",
            outcome="abandoned",
            le="20.0",
        )
        == 0
    )
    assert (
        _value(fams, "callfloor_queue_wait_seconds_sum", queue="sales", outcome="answered") == 10.0
    )


def test_abandoned_wait_histogram_sums_the_counted_abandons() -> None:
    """The abandoned outcome's _sum is the wait of its one counted abandon (short ones excluded)."""
    fams = _scrape(_proc())
    labels = {"queue": "sales", "outcome": "abandoned"}
    assert _value(fams, "callfloor_queue_wait_seconds_sum", **labels) == 30.0
    assert _value(fams, "callfloor_queue_wait_seconds_count", **labels) == 1.0


def test_violations_started_counter_survives_their_end() -> None:
    """A violation that started and ended still counts in callfloor_violations_started_total."""
    proc = processor(
        [
            ev("agent_state", B, agent="a9", state="wrap_up"),
            ev("agent_state", B + 200, agent="a9", state="available"),
        ]
    )
    fams = _scrape(proc)
    labels = {"kind": "wrap_up_exceeded", "severity": "warning"}
    assert _value(fams, "callfloor_violations_started_total", **labels) == 1.0
    assert _value(fams, "callfloor_violations_active", **labels) == 0.0


def test_per_agent_series_are_off_by_default() -> None:
    """Without the option no callfloor_agent_* family is exposed."""
    fams = _scrape(_proc())
    assert not [name for name in fams if name.startswith("callfloor_agent_")]


def test_per_agent_series_when_enabled() -> None:
    """With metrics.per_agent_series the current state, spell time and today's counts appear."""
    proc = _proc(config({"metrics": {"per_agent_series": True}}))
    fams = _scrape(proc)
    assert _value(fams, "callfloor_agent_state", agent="a1", state="available") == 1
    assert _value(fams, "callfloor_agent_state", agent="a1", state="on_call") is None
    assert _value(fams, "callfloor_agent_state_seconds", agent="a1") == AT - (B + 130)
    assert _value(fams, "callfloor_agent_answered_today", agent="a1") == 1
    assert _value(fams, "callfloor_agent_missed_today", agent="a2") == 0
    assert _value(fams, "callfloor_agent_not_ready_today_seconds", agent="a2") == 0


def test_per_agent_series_leave_out_agents_without_agent_state() -> None:
    """An agent known only from call events (no valid agent_state) has no series."""
    proc = processor(
        [*_scenario(), ev("call_missed", B + 150, call_id="c4", agent="ghost")],
        config({"metrics": {"per_agent_series": True}}),
    )
    proc.tick(AT)
    fams = _scrape(proc)
    assert _value(fams, "callfloor_agent_missed_today", agent="ghost") is None


def test_per_agent_option_can_be_overridden() -> None:
    """build_registry(per_agent_series=...) wins over the configuration."""
    proc = _proc()
    fams = _scrape(proc, per_agent_series=True)
    assert "callfloor_agent_state" in fams


def test_every_family_has_help_text() -> None:
    """Each family carries a non-empty HELP line."""
    fams = _scrape(_proc(config({"metrics": {"per_agent_series": True}})))
    assert len(fams) > 50
    assert all(f.documentation.strip() for f in fams.values())


def test_names_follow_prometheus_conventions() -> None:
    """snake_case names with a callfloor_ prefix; _total only and always on counters."""
    body = render(build_registry(_proc(), per_agent_series=True)).decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M))
    assert types
    for name, kind in types.items():
        assert re.fullmatch(r"callfloor_[a-z0-9_]+", name), name
        assert name.endswith("_total") == (kind == "counter"), name
        assert not re.search(r"_(percent|ms|milliseconds|minutes)$", name), name


def test_fast_render_is_identical_to_generate_latest() -> None:
    """render() on a FloorRegistry writes exactly the bytes generate_latest writes."""
    registry = build_registry(_proc(), per_agent_series=True, stats=_stats)
    assert render(registry) == generate_latest(registry)
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_render_keeps_other_collectors_of_the_registry() -> None:
    """Collectors registered next to the floor collector are rendered too, in order."""
    from prometheus_client import Counter

    registry = build_registry(_proc())
    Counter("callfloor_test_extra", "An extra counter.", registry=registry).inc()
    body = render(registry)
    assert body == generate_latest(registry)
    assert _value(_parse(body), "callfloor_test_extra_total") == 1.0


def test_collect_reads_the_clock_without_ticking() -> None:
    """Scraping uses proc.clock as it is and leaves it unchanged."""
    proc = _proc()
    fams = _scrape(proc)
    assert proc.clock == AT
    assert _value(fams, "callfloor_clock_seconds") == AT
    proc.tick(AT + 50)
    fams = _scrape(proc)
    assert _value(fams, "callfloor_queue_longest_wait_seconds", queue="support") == AT + 50 - (
        B + 5
    )


def test_scrape_before_any_event_has_no_time_based_samples() -> None:
    """A configured queue with no event and no tick yet exposes counters, not windows."""
    proc = FloorProcessor(config({"queues": {"sales": {}}}))
    fams = _scrape(proc)
    assert _value(fams, "callfloor_queue_offered_total", queue="sales") == 0
    assert not fams["callfloor_queue_window_offered_calls"].samples
    assert _value(fams, "callfloor_clock_seconds") is None


def test_active_violations_by_kind_and_severity() -> None:
    """An agent not ready past the limit counts once; other known kinds show 0."""
    events = [
        ev("agent_state", B, agent="a1", state="not_ready", reason="break"),
    ]
    proc = processor(events)
    proc.tick(B + 601)
    fams = _scrape(proc)
    assert (
        _value(fams, "callfloor_violations_active", kind="not_ready_exceeded", severity="warning")
        == 1
    )
    assert (
        _value(fams, "callfloor_violations_active", kind="wrap_up_exceeded", severity="warning")
        == 0
    )
    assert (
        _value(
            fams, "callfloor_violations_active", kind="not_ready_daily_exceeded", severity="major"
        )
        == 0
    )
    proc.apply(decode(ev("agent_state", B + 700, agent="a1", state="available")))
    fams = _scrape(proc)
    assert (
        _value(fams, "callfloor_violations_active", kind="not_ready_exceeded", severity="warning")
        == 0
    )


def test_processor_self_metrics() -> None:
    """Events by canonical type, rejections by reason and the engine counters are exposed."""
    proc = _proc()
    proc.count_rejected("missing_field")
    proc.apply(decode(ev("call_abandoned", AT + 1, call_id="nope")))  # orphaned
    fams = _scrape(proc)
    assert _value(fams, "callfloor_events_total", type="call_queued") == 4
    assert _value(fams, "callfloor_events_total", type="call_routed") == 0
    assert _value(fams, "callfloor_events_rejected_total", reason="missing_field") == 1
    assert _value(fams, "callfloor_events_rejected_total", reason="invalid_ts") == 0
    assert _value(fams, "callfloor_events_orphaned_total") == 1
    assert _value(fams, "callfloor_events_duplicate_total") == 0
    assert _value(fams, "callfloor_open_legs") == 1
    assert _value(fams, "callfloor_timers_pending") == len(proc.timers)


def test_label_values_are_escaped() -> None:
    """Queue names with quotes, backslashes and newlines survive the text format."""
    name = 'sa"les\\x\ny'
    proc = processor([ev("call_queued", B, call_id="c", queue=name)])
    registry = build_registry(proc)
    body = render(registry)
    assert body == generate_latest(registry)
    assert _value(_parse(body), "callfloor_queue_offered_total", queue=name) == 1


def _stats() -> ServiceStats:
    return IngestStats(
        http_requests_total={"metrics": 3},
        batches_total=5,
        batch_seconds_sum=0.25,
        batch_seconds_max=0.125,
        by_source={"http": 40},
        dropped_batches_total=1,
        dropped_events_total=7,
        held_events=2,
    )


def test_service_stats_are_exposed_when_given() -> None:
    """A stats provider adds HTTP and ingest self-metrics; without one they are absent."""
    fams = _scrape(_proc(), stats=_stats)
    assert _value(fams, "callfloor_http_requests_total", handler="metrics") == 3
    assert _value(fams, "callfloor_ingest_batch_seconds_count") == 5
    assert _value(fams, "callfloor_ingest_batch_seconds_sum") == 0.25
    assert _value(fams, "callfloor_ingest_events_total", source="http") == 40
    assert _value(fams, "callfloor_ingest_dropped_events_total") == 7
    assert "callfloor_http_requests" not in _scrape(_proc())


def test_render_service_reuses_one_registry_per_service() -> None:
    """render_service reads the service's processor and current stats object."""
    service = FloorService(config(), processor=_proc())
    service.stats.batches_total = 5
    first = _parse(render_service(service))
    assert _value(first, "callfloor_ingest_batch_seconds_count") == 5
    assert _value(first, "callfloor_ingest_held_events") == 0
    service.stats = IngestStats(batches_total=6)
    second = _parse(render_service(service))
    assert _value(second, "callfloor_ingest_batch_seconds_count") == 6
    service.proc = FloorProcessor(config())
    third = _parse(render_service(service))
    assert _value(third, "callfloor_queue_offered_total", queue="sales") is None


def test_registry_refuses_a_second_floor_collector() -> None:
    """describe() names the families, so a duplicate registration fails loudly."""
    proc = _proc()
    registry = build_registry(proc)
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(FloorCollector(proc))
    assert isinstance(registry, FloorRegistry)


def test_expired_state_is_counted() -> None:
    """Calls forgotten by live retention show in callfloor_state_expired_total by kind."""
    proc = _proc()
    proc.expired["conversations"] = 2
    fams = _scrape(proc)
    assert _value(fams, "callfloor_state_expired_total", kind="conversations") == 2.0
    assert _value(fams, "callfloor_state_expired_total", kind="pending_handling") == 0.0

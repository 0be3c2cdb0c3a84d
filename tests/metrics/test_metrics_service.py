"""Service self-metrics through the ServiceStats protocol, and render_service."""

from __future__ import annotations

from dataclasses import dataclass

from helpers import config
from metrics_util import FakeStats, parse, samples, scenario_proc, scrape, value

from callfloor.metrics import ServiceStats, render_service
from callfloor.processors.engine import FloorProcessor


def _stats() -> ServiceStats:
    return FakeStats(
        http_requests_total={"metrics": 3, "events": 9},
        http_errors_total={"413": 1, "400": 2},
        batches_total=5,
        batch_seconds_sum=0.25,
        batch_seconds_max=0.125,
        by_source={"http": 40},
        held_events=2,
        pending_events=7,
        dropped_batches_total=1,
        dropped_events_total=7,
        changes_dropped_total={"sse": 4},
        ingest_errors_total=1,
        source_up={"http": True, "asterisk": False},
        source_restarts_total={"asterisk": 3},
        resent_events_total={"http": 9},
        store_up=False,
        store_append_errors_total=6,
        store_errors_total={"read": 2},
        store_reconnects_total=1,
        checkpoints_total=12,
        checkpoint_errors_total=1,
        checkpoint_seconds=0.5,
        checkpoint_last_success_unix=1795392000.5,
        recovered_events_total=300,
        partitions_owned=2,
        partition_adoptions_total=3,
        partition_drops_total=1,
        leases_lost_total=1,
        store_stale_entries_total=4,
        store_bad_entries_total=2,
        store_append_retries_found_total=1,
        partition_adoption_errors_total=5,
        partition_handovers_total=6,
        follow_rewinds_total=7,
        redis_floor_up=False,
        redis_floor_errors_total=8,
        redis_floor_resyncs_total=9,
    )


def test_every_service_stat_is_exposed() -> None:
    """Each ServiceStats attribute has its family and value."""
    fams = scrape(scenario_proc(), stats=_stats)
    assert value(fams, "callfloor_http_requests_total", handler="metrics") == 3
    assert value(fams, "callfloor_http_errors_total", code="413") == 1
    assert value(fams, "callfloor_http_errors_total", code="400") == 2
    assert value(fams, "callfloor_ingest_batch_seconds_count") == 5
    assert value(fams, "callfloor_ingest_batch_seconds_sum") == 0.25
    assert value(fams, "callfloor_ingest_batch_seconds_max") == 0.125
    assert value(fams, "callfloor_ingest_events_total", source="http") == 40
    assert value(fams, "callfloor_ingest_held_events") == 2
    assert value(fams, "callfloor_ingest_pending_events") == 7
    assert value(fams, "callfloor_ingest_dropped_batches_total") == 1
    assert value(fams, "callfloor_ingest_dropped_events_total") == 7
    assert value(fams, "callfloor_changes_dropped_total", subscriber="sse") == 4
    assert value(fams, "callfloor_ingest_errors_total") == 1
    assert value(fams, "callfloor_source_up", source="http") == 1
    assert value(fams, "callfloor_source_up", source="asterisk") == 0
    assert value(fams, "callfloor_source_restarts_total", source="asterisk") == 3
    assert value(fams, "callfloor_ingest_resent_events_total", source="http") == 9
    assert value(fams, "callfloor_store_up") == 0
    assert value(fams, "callfloor_store_append_errors_total") == 6
    assert value(fams, "callfloor_store_errors_total", op="read") == 2
    assert value(fams, "callfloor_store_reconnects_total") == 1
    assert value(fams, "callfloor_checkpoints_total") == 12
    assert value(fams, "callfloor_checkpoint_errors_total") == 1
    assert value(fams, "callfloor_checkpoint_seconds") == 0.5
    assert value(fams, "callfloor_checkpoint_last_success_timestamp_seconds") == 1795392000.5
    assert value(fams, "callfloor_recovered_events_total") == 300
    assert value(fams, "callfloor_partitions_owned") == 2
    assert value(fams, "callfloor_partition_adoptions_total") == 3
    assert value(fams, "callfloor_partition_drops_total") == 1
    assert value(fams, "callfloor_leases_lost_total") == 1
    assert value(fams, "callfloor_store_stale_entries_total") == 4
    assert value(fams, "callfloor_store_bad_entries_total") == 2
    assert value(fams, "callfloor_store_append_retries_found_total") == 1
    assert value(fams, "callfloor_partition_adoption_errors_total") == 5
    assert value(fams, "callfloor_partition_handovers_total") == 6
    assert value(fams, "callfloor_follow_rewinds_total") == 7
    assert value(fams, "callfloor_redis_floor_up") == 0
    assert value(fams, "callfloor_redis_floor_errors_total") == 8
    assert value(fams, "callfloor_redis_floor_resyncs_total") == 9


def test_redis_floor_families_are_absent_without_the_sink() -> None:
    """Without a live floor in Redis its families have no series (not a false 0)."""
    fams = scrape(scenario_proc(), stats=_stats_without_redis_floor)
    assert not samples(fams, "callfloor_redis_floor_up")
    assert not samples(fams, "callfloor_redis_floor_errors_total")
    assert value(fams, "callfloor_store_bad_entries_total") == 0


def test_checkpoint_time_is_absent_before_the_first_checkpoint() -> None:
    """No checkpoint written yet: no last-checkpoint time (not a false 1970)."""
    fams = scrape(scenario_proc(), stats=_stats_without_redis_floor)
    assert not samples(fams, "callfloor_checkpoint_last_success_timestamp_seconds")
    assert value(fams, "callfloor_checkpoints_total") == 0


def _stats_without_redis_floor() -> ServiceStats:
    return FakeStats()


def test_service_families_are_absent_without_stats() -> None:
    """A registry over a bare processor has no HTTP, ingest or source families."""
    fams = scrape(scenario_proc())
    assert not [n for n in fams if n.startswith(("callfloor_http_", "callfloor_ingest_"))]
    assert "callfloor_source_up" not in fams


def test_service_series_are_sorted_by_label() -> None:
    """Keyed stats come out in label order, whatever the mapping's order."""
    fams = scrape(scenario_proc(), stats=_stats)
    assert [s["code"] for s in samples(fams, "callfloor_http_errors_total")] == ["400", "413"]


@dataclass(eq=False)  # hashed by identity, as render_service keeps a registry per service
class _Service:
    """What render_service reads of the live service: its floor and stats."""

    floor: FloorProcessor
    stats: FakeStats


def test_render_service_reads_the_current_stats_and_processor() -> None:
    """render_service follows a swapped stats object and a replaced processor."""
    service = _Service(scenario_proc(), FakeStats(batches_total=5))
    first = parse(render_service(service))
    assert value(first, "callfloor_ingest_batch_seconds_count") == 5
    assert value(first, "callfloor_queue_offered_total", queue="sales") == 3
    service.stats = FakeStats(batches_total=6)
    second = parse(render_service(service))
    assert value(second, "callfloor_ingest_batch_seconds_count") == 6
    service.floor = FloorProcessor(config())
    third = parse(render_service(service))
    assert value(third, "callfloor_queue_offered_total", queue="sales") is None

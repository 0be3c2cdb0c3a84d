"""Counters of the live shell: what the processor cannot see (transport, sources, subscribers).

:class:`IngestStats` provides the ``ServiceStats`` protocol of
:mod:`callfloor.metrics.stats` as plain attributes: the collector reads them at
every scrape without copying. The service updates them in place; the mappings are
shared with the parts that count (the bus counts dropped subscribers, the
supervisor counts restarts), so nothing is copied on the per-event path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callfloor.ingest.counts import SourceCounts
from callfloor.metrics.stats import AlertSinkStats


@dataclass
class IngestStats:
    """Self-metrics of the live service (see the module docstring)."""

    http_requests_total: dict[str, int] = field(default_factory=dict)  # by handler
    http_errors_total: dict[str, int] = field(default_factory=dict)  # by status code
    http_malformed_total: dict[str, int] = field(default_factory=dict)  # by problem
    http_body_bytes_in_flight: int = 0  # request bodies being read or decoded
    http_bodies_refused_total: int = 0  # refused: [limits] max_inflight_body reached
    batches_total: int = 0
    batch_events_total: int = 0
    batch_seconds_sum: float = 0.0
    batch_seconds_max: float = 0.0
    by_source: dict[str, int] = field(default_factory=dict)  # events received
    held_events: int = 0
    pending_events: int = 0  # queued + held
    dropped_batches_total: int = 0  # refused by back-pressure
    dropped_events_total: int = 0
    resent_events_total: dict[str, int] = field(default_factory=dict)  # by source
    changes_dropped_total: dict[str, int] = field(default_factory=dict)  # by subscriber kind
    ingest_errors_total: int = 0  # exceptions caught in ingest rounds
    source_up: dict[str, bool] = field(default_factory=dict)
    source_restarts_total: dict[str, int] = field(default_factory=dict)
    # MQTT sources (callfloor.ingest.mqtt.MqttStats), by source name.
    mqtt_messages_total: dict[str, int] = field(default_factory=dict)
    mqtt_redelivered_total: dict[str, int] = field(default_factory=dict)
    mqtt_acks_lost_total: dict[str, int] = field(default_factory=dict)
    mqtt_deadletters_total: dict[tuple[str, str], int] = field(default_factory=dict)  # + reason
    # The source kit's families, by (source, kind) (callfloor.ingest.counts).
    source_counts: SourceCounts = field(default_factory=SourceCounts)
    # The store, checkpoints and partitions (copied from the writer and the store at
    # each scrape; the counting happens where the work is).
    store_up: bool = True
    store_append_errors_total: int = 0
    store_errors_total: dict[str, int] = field(default_factory=dict)  # by operation
    store_reconnects_total: int = 0
    checkpoints_total: int = 0
    checkpoint_errors_total: int = 0
    checkpoint_seconds: float = 0.0
    checkpoint_last_success_unix: float | None = None  # wall clock of the last checkpoint
    checkpoint_fallbacks_total: dict[str, int] = field(default_factory=dict)  # by reason
    recovered_events_total: int = 0
    partitions_owned: int = 0
    partition_stale_since: dict[str, float] = field(default_factory=dict)  # by partition
    partition_adoptions_total: int = 0
    partition_drops_total: int = 0
    leases_lost_total: int = 0
    store_stale_entries_total: int = 0
    store_bad_entries_total: int = 0
    store_torn_records_total: int = 0
    store_append_retries_found_total: int = 0
    partition_adoption_errors_total: int = 0
    partition_handovers_total: int = 0
    follow_rewinds_total: int = 0
    redis_floor_up: bool | None = None  # None: no live floor in Redis
    redis_floor_errors_total: int = 0
    redis_floor_resyncs_total: int = 0
    alerts_by_state: dict[tuple[str, str, str], int] = field(default_factory=dict)
    alert_evaluations_total: int = 0
    alert_evaluation_seconds_total: float = 0.0
    alert_rederivations_total: dict[str, int] = field(
        default_factory=lambda: {"done": 0, "skipped": 0, "failed": 0}
    )
    alert_notifications_withheld_total: int = 0
    alert_sinks: AlertSinkStats | None = None  # the alert outbox's stats; None: no sinks

"""Service self-metrics: the :class:`ServiceStats` protocol and its families.

The live service (HTTP, ingest, sources, change bus) counts what the processor cannot
see; the collector reads those counts through this protocol at every scrape. The
attributes are read-only, so the service's own mutable stats object satisfies it as it
is, with no copying.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from callfloor.metrics.render import NO_LABELS, BuiltFamily, format_value, label_set

__all__ = [
    "AlertSinkStats",
    "LatencyHistogram",
    "ServiceStats",
    "SourceCountsView",
    "StatsProvider",
    "add_alert_sink_samples",
    "add_service_samples",
    "add_source_samples",
]


class LatencyHistogram(Protocol):
    """A histogram of seconds: per-bucket counts (not cumulative; the last is +Inf)."""

    @property
    def bounds(self) -> Sequence[float]:
        """Bucket upper bounds, increasing."""

    @property
    def counts(self) -> Sequence[int]:
        """Observations per bucket, ``len(bounds) + 1`` of them."""

    @property
    def sum(self) -> float:
        """Sum of the observations."""

    @property
    def count(self) -> int:
        """Number of observations."""


class AlertSinkStats(Protocol):
    """The alert outbox's counters by sink (``callfloor.sinks.alerts.OutboxStats``)."""

    @property
    def sent_total(self) -> Mapping[str, int]:
        """Notifications delivered, by sink."""

    @property
    def retries_total(self) -> Mapping[str, int]:
        """Failed attempts tried again, by sink."""

    @property
    def dropped_total(self) -> Mapping[tuple[str, str], int]:
        """Notifications dropped, by (sink, reason)."""

    @property
    def skipped_total(self) -> Mapping[tuple[str, str], int]:
        """Notifications a sink did not take, by (sink, reason)."""

    @property
    def queue_depth(self) -> Mapping[str, int]:
        """Notifications waiting or in flight, by sink."""

    @property
    def delivery_seconds(self) -> Mapping[str, LatencyHistogram]:
        """Queued -> delivered, by sink."""

    @property
    def refresh_errors_total(self) -> Mapping[str, int]:
        """Failed keep-alive re-posts (Alertmanager), by sink."""


class SourceCountsView(Protocol):
    """The source kit's counters, by (source, kind) (``callfloor.ingest.counts``)."""

    @property
    def received_total(self) -> Mapping[tuple[str, str], int]:
        """Records read (lines, messages)."""

    @property
    def events_total(self) -> Mapping[tuple[str, str], int]:
        """Events the records mapped to."""

    @property
    def rejected_total(self) -> Mapping[tuple[str, str, str], int]:
        """Records that could not be mapped, by (source, kind, reason)."""

    @property
    def skipped_total(self) -> Mapping[tuple[str, str], int]:
        """Records that carry nothing for callfloor."""

    @property
    def deadletters_total(self) -> Mapping[tuple[str, str, str], int]:
        """Dead letters written, by (source, kind, reason)."""

    @property
    def reconnects_total(self) -> Mapping[tuple[str, str], int]:
        """Connections (or files) opened again after the first."""

    @property
    def deadletters_suppressed_total(self) -> Mapping[tuple[str, str, str], int]:
        """Dead letters left unwritten over the rate, by (source, kind, reason)."""

    @property
    def rotations_total(self) -> Mapping[tuple[str, str, str], int]:
        """Rotations of a source's file, by (source, kind, reason)."""

    @property
    def gap_seconds_total(self) -> Mapping[tuple[str, str], float]:
        """Seconds spent disconnected after having been connected."""

    @property
    def position(self) -> Mapping[tuple[str, str], float]:
        """Where the source reads (a file's byte offset)."""

    @property
    def lag_seconds(self) -> Mapping[tuple[str, str], float]:
        """Receipt time less the newest event time of the last batch read."""


class ServiceStats(Protocol):
    """Self-metrics of the service layer, read at every scrape."""

    @property
    def http_requests_total(self) -> Mapping[str, int]:
        """HTTP requests by handler (route name)."""

    @property
    def http_errors_total(self) -> Mapping[str, int]:
        """HTTP error answers by status code as a string (``"413"``)."""

    @property
    def http_malformed_total(self) -> Mapping[str, int]:
        """Requests that were not well-formed HTTP, by problem (``"bad_chunked"``)."""

    @property
    def http_body_bytes_in_flight(self) -> int:
        """Bytes of request bodies being read or decoded now."""

    @property
    def http_bodies_refused_total(self) -> int:
        """Request bodies refused because ``[limits] max_inflight_body`` was reached."""

    @property
    def batches_total(self) -> int:
        """Ingest batches applied."""

    @property
    def batch_seconds_sum(self) -> float:
        """Seconds spent applying those batches."""

    @property
    def batch_seconds_max(self) -> float:
        """The longest batch since start-up, seconds."""

    @property
    def by_source(self) -> Mapping[str, int]:
        """Events received by source."""

    @property
    def held_events(self) -> int:
        """Events received ahead of the watermark, not applied yet."""

    @property
    def pending_events(self) -> int:
        """Events accepted and not applied yet: queued plus held."""

    @property
    def dropped_batches_total(self) -> int:
        """Batches refused by back-pressure."""

    @property
    def dropped_events_total(self) -> int:
        """Events in those refused batches."""

    @property
    def changes_dropped_total(self) -> Mapping[str, int]:
        """Change sets slow subscribers lost, by subscriber kind (``"sse"``)."""

    @property
    def ingest_errors_total(self) -> int:
        """Unexpected errors caught in ingest rounds."""

    @property
    def source_up(self) -> Mapping[str, bool]:
        """Whether each source is running now."""

    @property
    def source_restarts_total(self) -> Mapping[str, int]:
        """Restarts of each source after it failed or ended."""

    @property
    def mqtt_messages_total(self) -> Mapping[str, int]:
        """MQTT messages received, by source."""

    @property
    def mqtt_redelivered_total(self) -> Mapping[str, int]:
        """MQTT messages the broker sent again (DUP flag), by source."""

    @property
    def mqtt_acks_lost_total(self) -> Mapping[str, int]:
        """MQTT messages whose PUBACK was not sent (the connection closed first), by source."""

    @property
    def mqtt_deadletters_total(self) -> Mapping[tuple[str, str], int]:
        """MQTT dead letters published, by (source, reason)."""

    @property
    def source_counts(self) -> SourceCountsView:
        """The source kit's per-source families."""

    @property
    def resent_events_total(self) -> Mapping[str, int]:
        """Events recognised as resends, by source."""

    @property
    def store_up(self) -> bool:
        """Whether the store's appends succeed now."""

    @property
    def store_append_errors_total(self) -> int:
        """Failed appends (retried)."""

    @property
    def store_errors_total(self) -> Mapping[str, int]:
        """Other failed store operations, by operation."""

    @property
    def store_reconnects_total(self) -> int:
        """Connections to the store made again."""

    @property
    def checkpoints_total(self) -> int:
        """Checkpoints written."""

    @property
    def checkpoint_errors_total(self) -> int:
        """Checkpoints that failed."""

    @property
    def checkpoint_seconds(self) -> float:
        """How long the last checkpoint took."""

    @property
    def checkpoint_last_success_unix(self) -> float | None:
        """When the last checkpoint was written, Unix seconds (None: none yet)."""

    @property
    def checkpoint_fallbacks_total(self) -> Mapping[str, int]:
        """Kept checkpoints recovery could not restore, by reason."""

    @property
    def recovered_events_total(self) -> int:
        """Events replayed from the log."""

    @property
    def partitions_owned(self) -> int:
        """Partitions applied here."""

    @property
    def partition_stale_since(self) -> Mapping[str, float]:
        """Partitions served stale (lease lost), by key: since when (epoch seconds)."""

    @property
    def partition_adoptions_total(self) -> int:
        """Partitions taken on."""

    @property
    def partition_drops_total(self) -> int:
        """Partitions given up."""

    @property
    def leases_lost_total(self) -> int:
        """Leases found held by another process."""

    @property
    def store_stale_entries_total(self) -> int:
        """Followed entries dropped as not contiguous."""

    @property
    def store_bad_entries_total(self) -> int:
        """Log entries that could not be decoded (skipped)."""

    @property
    def store_torn_records_total(self) -> int:
        """Partial last records cut off the file log at start."""

    @property
    def store_append_retries_found_total(self) -> int:
        """Retried appends the store turned out to have already."""

    @property
    def partition_adoption_errors_total(self) -> int:
        """Adoptions that failed (the lease was released, retried later)."""

    @property
    def partition_handovers_total(self) -> int:
        """Partitions handed over to the wanted owner."""

    @property
    def follow_rewinds_total(self) -> int:
        """Times the follower read a stream again from where the writer stands."""

    @property
    def redis_floor_up(self) -> bool | None:
        """Whether the live floor in Redis is being written (None: no such sink)."""

    @property
    def redis_floor_errors_total(self) -> int:
        """Failed writes of the live floor in Redis."""

    @property
    def redis_floor_resyncs_total(self) -> int:
        """Whole rewrites of the live floor in Redis (after a failure or a drop)."""

    @property
    def alerts_by_state(self) -> Mapping[tuple[str, str, str], int]:
        """Listed alerts by (rule, severity, state)."""

    @property
    def alert_evaluations_total(self) -> int:
        """Rule evaluations of a scope at an instant."""

    @property
    def alert_evaluation_seconds_total(self) -> float:
        """Time spent evaluating rules."""

    @property
    def alert_rederivations_total(self) -> Mapping[str, int]:
        """Alert timelines derived again after late events, by outcome."""

    @property
    def alert_notifications_withheld_total(self) -> int:
        """Old history of a backfill not notified."""

    @property
    def alert_sinks(self) -> AlertSinkStats | None:
        """The alert outbox's counters (None: no alert sinks)."""


StatsProvider = Callable[[], ServiceStats]
"""Returns the current stats object (the service may swap it)."""


def _by(fam: BuiltFamily, label: str, values: Mapping[str, float]) -> None:
    name = fam.family.name
    for key, n in sorted(values.items()):
        fam.add(name, label_set(**{label: key}), n)


def _one(fam: BuiltFamily, value: float) -> None:
    fam.add(fam.family.name, NO_LABELS, value)


def add_service_samples(fam: Mapping[str, BuiltFamily], stats: ServiceStats) -> None:
    """Fill the service families (catalogue group ``service``) from ``stats``."""
    _by(fam["callfloor_http_requests_total"], "handler", stats.http_requests_total)
    _by(fam["callfloor_http_errors_total"], "code", stats.http_errors_total)
    _by(fam["callfloor_http_malformed_total"], "problem", stats.http_malformed_total)
    _one(fam["callfloor_http_body_bytes_in_flight"], stats.http_body_bytes_in_flight)
    _one(fam["callfloor_http_bodies_refused_total"], stats.http_bodies_refused_total)
    batch = fam["callfloor_ingest_batch_seconds"]
    batch.add("callfloor_ingest_batch_seconds_count", NO_LABELS, stats.batches_total)
    batch.add("callfloor_ingest_batch_seconds_sum", NO_LABELS, stats.batch_seconds_sum)
    _one(fam["callfloor_ingest_batch_seconds_max"], stats.batch_seconds_max)
    _by(fam["callfloor_ingest_events_total"], "source", stats.by_source)
    _by(fam["callfloor_ingest_resent_events_total"], "source", stats.resent_events_total)
    _one(fam["callfloor_ingest_dropped_batches_total"], stats.dropped_batches_total)
    _one(fam["callfloor_ingest_dropped_events_total"], stats.dropped_events_total)
    _one(fam["callfloor_ingest_held_events"], stats.held_events)
    _one(fam["callfloor_ingest_pending_events"], stats.pending_events)
    _one(fam["callfloor_ingest_errors_total"], stats.ingest_errors_total)
    _by(fam["callfloor_changes_dropped_total"], "subscriber", stats.changes_dropped_total)
    up = {source: 1.0 if running else 0.0 for source, running in stats.source_up.items()}
    _by(fam["callfloor_source_up"], "source", up)
    _by(fam["callfloor_source_restarts_total"], "source", stats.source_restarts_total)
    _by(fam["callfloor_mqtt_messages_total"], "source", stats.mqtt_messages_total)
    _by(fam["callfloor_mqtt_redelivered_total"], "source", stats.mqtt_redelivered_total)
    _by(fam["callfloor_mqtt_acks_lost_total"], "source", stats.mqtt_acks_lost_total)
    letters = fam["callfloor_mqtt_deadletters_total"]
    for (source, reason), n in sorted(stats.mqtt_deadletters_total.items()):
        letters.add(letters.family.name, label_set(source=source, reason=reason), n)
    add_source_samples(fam, stats.source_counts)
    _one(fam["callfloor_store_up"], 1.0 if stats.store_up else 0.0)
    _one(fam["callfloor_store_append_errors_total"], stats.store_append_errors_total)
    _by(fam["callfloor_store_errors_total"], "op", stats.store_errors_total)
    _one(fam["callfloor_store_reconnects_total"], stats.store_reconnects_total)
    _one(fam["callfloor_checkpoints_total"], stats.checkpoints_total)
    _one(fam["callfloor_checkpoint_errors_total"], stats.checkpoint_errors_total)
    _one(fam["callfloor_checkpoint_seconds"], stats.checkpoint_seconds)
    if stats.checkpoint_last_success_unix is not None:
        last = fam["callfloor_checkpoint_last_success_timestamp_seconds"]
        _one(last, stats.checkpoint_last_success_unix)
    _by(fam["callfloor_checkpoint_fallbacks_total"], "reason", stats.checkpoint_fallbacks_total)
    _one(fam["callfloor_recovered_events_total"], stats.recovered_events_total)
    _one(fam["callfloor_partitions_owned"], stats.partitions_owned)
    _by(fam["callfloor_partition_stale_since_seconds"], "partition", stats.partition_stale_since)
    _one(fam["callfloor_partition_adoptions_total"], stats.partition_adoptions_total)
    _one(fam["callfloor_partition_drops_total"], stats.partition_drops_total)
    _one(fam["callfloor_leases_lost_total"], stats.leases_lost_total)
    _one(fam["callfloor_store_stale_entries_total"], stats.store_stale_entries_total)
    _one(fam["callfloor_store_bad_entries_total"], stats.store_bad_entries_total)
    _one(fam["callfloor_store_torn_records_total"], stats.store_torn_records_total)
    _one(fam["callfloor_store_append_retries_found_total"], stats.store_append_retries_found_total)
    _one(fam["callfloor_partition_adoption_errors_total"], stats.partition_adoption_errors_total)
    _one(fam["callfloor_partition_handovers_total"], stats.partition_handovers_total)
    _one(fam["callfloor_follow_rewinds_total"], stats.follow_rewinds_total)
    if stats.redis_floor_up is not None:
        _one(fam["callfloor_redis_floor_up"], 1.0 if stats.redis_floor_up else 0.0)
        _one(fam["callfloor_redis_floor_errors_total"], stats.redis_floor_errors_total)
        _one(fam["callfloor_redis_floor_resyncs_total"], stats.redis_floor_resyncs_total)
    alerts = fam["callfloor_alerts"]
    for (rule, severity, state), n in sorted(stats.alerts_by_state.items()):
        alerts.add(alerts.family.name, label_set(rule=rule, severity=severity, state=state), n)
    _one(fam["callfloor_alert_evaluations_total"], stats.alert_evaluations_total)
    _one(fam["callfloor_alert_evaluation_seconds_total"], stats.alert_evaluation_seconds_total)
    _by(fam["callfloor_alert_rederivations_total"], "outcome", stats.alert_rederivations_total)
    _one(
        fam["callfloor_alert_notifications_withheld_total"],
        stats.alert_notifications_withheld_total,
    )
    if stats.alert_sinks is not None:
        add_alert_sink_samples(fam, stats.alert_sinks)


def add_source_samples(fam: Mapping[str, BuiltFamily], counts: SourceCountsView) -> None:
    """Fill the source kit's families (labelled by source and kind)."""
    pairs: tuple[tuple[str, Mapping[tuple[str, str], float]], ...] = (
        ("callfloor_source_received_total", counts.received_total),
        ("callfloor_source_events_total", counts.events_total),
        ("callfloor_source_skipped_total", counts.skipped_total),
        ("callfloor_source_reconnects_total", counts.reconnects_total),
        ("callfloor_source_gap_seconds_total", counts.gap_seconds_total),
        ("callfloor_source_position", counts.position),
        ("callfloor_source_lag_seconds", counts.lag_seconds),
    )
    for family, values in pairs:
        built = fam[family]
        for (source, kind), n in sorted(values.items()):
            built.add(family, label_set(source=source, kind=kind), n)
    for family, by_reason in (
        ("callfloor_source_rejected_total", counts.rejected_total),
        ("callfloor_source_deadletters_total", counts.deadletters_total),
        ("callfloor_source_deadletters_suppressed_total", counts.deadletters_suppressed_total),
        ("callfloor_source_rotations_total", counts.rotations_total),
    ):
        built = fam[family]
        for (source, kind, reason), n in sorted(by_reason.items()):
            built.add(family, label_set(source=source, kind=kind, reason=reason), n)


def add_alert_sink_samples(fam: Mapping[str, BuiltFamily], stats: AlertSinkStats) -> None:
    """Fill the alert sink families from the outbox's counters."""
    _by(fam["callfloor_alert_notifications_sent_total"], "sink", stats.sent_total)
    _by(fam["callfloor_alert_notifications_retried_total"], "sink", stats.retries_total)
    for family, counts in (
        ("callfloor_alert_notifications_dropped_total", stats.dropped_total),
        ("callfloor_alert_notifications_skipped_total", stats.skipped_total),
    ):
        built = fam[family]
        for (sink, reason), n in sorted(counts.items()):
            built.add(family, label_set(sink=sink, reason=reason), n)
    _by(fam["callfloor_alert_sink_queue_depth"], "sink", stats.queue_depth)
    _by(fam["callfloor_alert_sink_refresh_errors_total"], "sink", stats.refresh_errors_total)
    name = "callfloor_alert_delivery_seconds"
    hist = fam[name]
    for sink, h in sorted(stats.delivery_seconds.items()):
        cumulative = 0
        for bound, n in zip((*h.bounds, None), h.counts, strict=True):
            cumulative += n
            le = "+Inf" if bound is None else format_value(bound)
            hist.add(f"{name}_bucket", label_set(sink=sink, le=le), cumulative)
        hist.add(f"{name}_count", label_set(sink=sink), h.count)
        hist.add(f"{name}_sum", label_set(sink=sink), h.sum)

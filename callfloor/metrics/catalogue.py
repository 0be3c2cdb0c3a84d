"""Every Prometheus family callfloor exposes, as data: the one source of truth.

The collector builds its families from :data:`CATALOGUE`, ``docs/metrics.md`` is
generated from it (:mod:`callfloor.metrics.docs`), and a dashboard generator can read
it the same way. A family's name, type and labels are a public interface (alert rules
and dashboards query them): add families and labels, never rename one.

Conventions: names are ``callfloor_`` plus snake case, in base units (seconds,
ratios 0..1); counters and only counters end in ``_total``; a histogram's labels are
listed without ``le``. A sample whose value is undefined (a rate over nothing) is left
out, never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class MetricType(StrEnum):
    """Prometheus family type, as written on the ``# TYPE`` line."""

    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"


class Unit(StrEnum):
    """What a sample's value measures (for docs and dashboard axes)."""

    NONE = ""  # a count, a flag or an info series' constant 1
    SECONDS = "seconds"
    RATIO = "ratio"  # 0..1
    PER_SECOND = "per_second"
    UNIX_SECONDS = "unix_seconds"  # a point in time


class Group(StrEnum):
    """Which part of the floor a family describes; it decides when the family is exposed."""

    QUEUE = "queue"
    SITE = "site"
    PROCESSOR = "processor"
    AGENT = "agent"  # only with [metrics] per_agent_series = true
    SERVICE = "service"  # only when a service provides its ServiceStats


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family.

    ``labels`` are the label names in the order the docs list them (the exposition
    sorts them). ``agent_labels``, when set, replaces ``labels`` while per-agent
    series are on.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    unit: Unit
    group: Group
    agent_labels: tuple[str, ...] | None = None

    def label_names(self, per_agent: bool) -> tuple[str, ...]:
        """The label names with per-agent series on or off."""
        if per_agent and self.agent_labels is not None:
            return self.agent_labels
        return self.labels


# What every label means (docs/metrics.md lists them; a test checks each is described).
LABELS: Final[Mapping[str, str]] = {
    "queue": "Queue name, as in the events and the configuration.",
    "site": "Site (call floor) name; `default` for queues and agents without one.",
    "channel": "The queue's channel: voice, chat, email, callback or other.",
    "window": "The configured rolling windows (`15m`, `60m` by default), then `interval` "
    "(the site's current interval) and `today` (since site-local midnight).",
    "state": "Agent state: available, ringing, on_call, wrap_up, not_ready "
    "(logged_out agents are not counted).",
    "outcome": "How a leg's wait ended: `answered` or `abandoned` (short abandons excluded).",
    "le": "Histogram bucket upper bound in seconds; the queue's bounds include its SL and "
    "short-abandon thresholds.",
    "kind": "Violation kind: not_ready_exceeded, wrap_up_exceeded, not_ready_daily_exceeded, "
    "missed_calls_exceeded, stale_agent; for callfloor_state_expired_total what expired "
    "(open_legs, conversations, pending_handling, agents) or was forgotten "
    "(forgotten_queues, forgotten_sites, forgotten_agents).",
    "severity": "Violation severity: warning, or minor/major/critical for the daily "
    "not-ready limits in the order configured.",
    "type": "Canonical event type, e.g. call_queued or agent_state.",
    "reason": "Why an event was rejected: a decode reason (invalid_json, missing_field, "
    "wrong_type, invalid_value, invalid_ts, ...) or a limit (name_too_long, too_many_queues, "
    "too_many_sites, too_many_agents, ts_too_old, too_many_calls, too_many_future_events); "
    "for MQTT dead letters also why a whole "
    "message was not taken (message_too_large, too_many_events, empty_message).",
    "agent": "Agent id, as in the events.",
    "name": "The agent's display name from its latest agent_state (empty when none was sent).",
    "team": "The agent's team from its latest agent_state (empty when none was sent).",
    "handler": "HTTP route name, e.g. metrics, snapshot, events.",
    "code": "HTTP status code of an error answer, e.g. 400, 413, 503.",
    "source": "Event source name, e.g. http or simulated.",
    "subscriber": "Kind of change-stream subscriber, e.g. sse.",
    "op": "Store operation, e.g. read (following the log), renew (leases), load, save.",
}

# SPEC §3 counts: (window field, what it counts). The field names are those of the
# document's window objects, so the collector reads them by these names.
WINDOW_COUNTS: Final[tuple[tuple[str, str], ...]] = (
    ("offered", "legs started (call_queued)"),
    ("answered", "legs answered"),
    ("abandoned", "legs abandoned after the short-abandon threshold"),
    ("short_abandoned", "legs abandoned within the short-abandon threshold"),
    ("dequeued", "legs ended by call_dequeued or a requeue"),
    ("sl_offered", "legs with a service-level event"),
    ("answered_in_sl", "legs answered within the SL threshold"),
    ("abandoned_in_sl", "legs abandoned within the SL threshold (not short)"),
    ("handled", "calls whose handling (talk and after-call work) completed"),
)

# Window rates: (window field, name suffix, unit, help with {scope}).
WINDOW_RATES: Final[tuple[tuple[str, str, Unit, str], ...]] = (
    (
        "service_level",
        "service_level_ratio",
        Unit.RATIO,
        "Service level over the window by the {scope}'s formula (0..1); "
        "absent when no leg had a service-level event.",
    ),
    (
        "abandon_rate",
        "abandon_ratio",
        Unit.RATIO,
        "abandoned / (answered + abandoned) over the window (0..1); absent with neither.",
    ),
    (
        "asa_s",
        "asa_seconds",
        Unit.SECONDS,
        "Average speed of answer: mean wait of the legs answered in the window, seconds.",
    ),
    (
        "aht_s",
        "aht_seconds",
        Unit.SECONDS,
        "Average handle time of the calls handled in the window (talk + after-call work), seconds.",
    ),
    (
        "max_wait_s",
        "max_wait_seconds",
        Unit.SECONDS,
        "Longest wait of the legs answered or abandoned in the window, seconds.",
    ),
)


def rate_family(scope: str, field: str) -> str:
    """The family name of a window rate (``scope`` is ``queue`` or ``site``)."""
    for key, suffix, _, _ in WINDOW_RATES:
        if key == field:
            return f"callfloor_{scope}_{suffix}"
    raise KeyError(field)


def window_count_family(scope: str, field: str) -> str:
    """The family name of a windowed count (``scope`` is ``queue`` or ``site``)."""
    return f"callfloor_{scope}_window_{field}_calls"


def total_family(field: str) -> str:
    """The family name of a queue's lifetime count."""
    return f"callfloor_queue_{field}_total"


_G = MetricType.GAUGE
_C = MetricType.COUNTER
_N = Unit.NONE
_S = Unit.SECONDS
_R = Unit.RATIO


def _window_families(scope: str, group: Group) -> list[Family]:
    labels = (scope, "window")
    out = [
        Family(f"callfloor_{scope}_{suffix}", _G, text.format(scope=scope), labels, unit, group)
        for _, suffix, unit, text in WINDOW_RATES
    ]
    out += [
        Family(
            window_count_family(scope, key), _G, f"Count in the window: {what}.", labels, _N, group
        )
        for key, what in WINDOW_COUNTS
    ]
    return out


def _queue(
    name: str, kind: MetricType, help_text: str, labels: tuple[str, ...], unit: Unit
) -> Family:
    return Family(name, kind, help_text, labels, unit, Group.QUEUE)


_Q = ("queue",)

QUEUE_FAMILIES: Final[tuple[Family, ...]] = (
    _queue(
        "callfloor_queue_info",
        _G,
        "Queue metadata (always 1): its site and channel.",
        ("queue", "site", "channel"),
        _N,
    ),
    _queue(
        "callfloor_queue_service_level_target_ratio",
        _G,
        "Service-level target of the queue.",
        _Q,
        _R,
    ),
    _queue(
        "callfloor_queue_service_level_threshold_seconds",
        _G,
        "Service-level threshold T of the queue, seconds.",
        _Q,
        _S,
    ),
    *_window_families("queue", Group.QUEUE),
    *(
        _queue(total_family(key), _C, f"Lifetime count since start-up: {what}.", _Q, _N)
        for key, what in WINDOW_COUNTS
    ),
    _queue(
        "callfloor_queue_handle_seconds_total",
        _C,
        "Lifetime sum of the handle times of handled calls, seconds.",
        _Q,
        _S,
    ),
    _queue(
        "callfloor_queue_answered_wait_seconds_total",
        _C,
        "Lifetime sum of the waits of answered legs, seconds.",
        _Q,
        _S,
    ),
    _queue(
        "callfloor_queue_wait_seconds",
        MetricType.HISTOGRAM,
        "Waits of legs since start-up by outcome (abandoned excludes short abandons).",
        ("queue", "outcome"),
        _S,
    ),
    _queue("callfloor_queue_waiting_calls", _G, "Calls waiting in the queue now.", _Q, _N),
    _queue(
        "callfloor_queue_longest_wait_seconds",
        _G,
        "Wait so far of the oldest waiting call, seconds (0 when none).",
        _Q,
        _S,
    ),
    _queue(
        "callfloor_queue_agents",
        _G,
        "Agents serving the queue by state (logged_out left out).",
        ("queue", "state"),
        _N,
    ),
    _queue(
        "callfloor_queue_occupancy_ratio",
        _G,
        "(ringing + on_call + wrap_up) / agents not in not_ready; absent when none.",
        _Q,
        _R,
    ),
    _queue(
        "callfloor_queue_arrival_rate_per_second",
        _G,
        "Legs offered in the rolling 15 minutes / 900.",
        _Q,
        Unit.PER_SECOND,
    ),
    _queue(
        "callfloor_queue_required_agents",
        _G,
        "Erlang C agents needed to reach the SL target; absent when nothing was offered "
        "in the rolling 15 minutes.",
        _Q,
        _N,
    ),
    _queue(
        "callfloor_queue_projected_service_level_ratio",
        _G,
        "Erlang C service level with the agents staffed now; absent when nothing was "
        "offered in the rolling 15 minutes.",
        _Q,
        _R,
    ),
)


def _site(name: str, help_text: str, labels: tuple[str, ...], unit: Unit) -> Family:
    return Family(name, _G, help_text, labels, unit, Group.SITE)


SITE_FAMILIES: Final[tuple[Family, ...]] = (
    *_window_families("site", Group.SITE),
    _site("callfloor_site_waiting_calls", "Calls waiting in the site's queues now.", ("site",), _N),
    _site(
        "callfloor_site_longest_wait_seconds",
        "Wait so far of the oldest call waiting in the site's queues, seconds (0 when none).",
        ("site",),
        _S,
    ),
    _site(
        "callfloor_site_agents",
        "Agents of the site by state, each once (logged_out left out).",
        ("site", "state"),
        _N,
    ),
    _site(
        "callfloor_site_occupancy_ratio",
        "(ringing + on_call + wrap_up) / agents not in not_ready; absent when none.",
        ("site",),
        _R,
    ),
    _site(
        "callfloor_site_arrival_rate_per_second",
        "Legs offered to the site's queues in the rolling 15 minutes / 900.",
        ("site",),
        Unit.PER_SECOND,
    ),
)


def _proc(
    name: str,
    kind: MetricType,
    help_text: str,
    labels: tuple[str, ...] = (),
    unit: Unit = _N,
    agent_labels: tuple[str, ...] | None = None,
) -> Family:
    return Family(name, kind, help_text, labels, unit, Group.PROCESSOR, agent_labels)


_KS = ("kind", "severity")

PROCESSOR_FAMILIES: Final[tuple[Family, ...]] = (
    _proc(
        "callfloor_violations_active",
        _G,
        "Idle-time violations active now. Without per-agent series: by kind and severity, "
        "0 for each the configuration can raise; with them: one series per agent, kind and "
        "severity that has an active violation.",
        _KS,
        agent_labels=("agent", "kind", "severity"),
    ),
    _proc(
        "callfloor_violations_started_total",
        _C,
        "Idle-time violations started since start-up (including later retracted ones).",
        _KS,
    ),
    _proc(
        "callfloor_state_expired_total",
        _C,
        "Calls forgotten in live operation after the retention: conversations that never "
        "ended, handling never decided by a next agent_state; and queues, sites and agents "
        "events created, forgotten once quiet for [limits] forget_after.",
        ("kind",),
    ),
    _proc(
        "callfloor_violations_retracted_total",
        _C,
        "Violations taken back because a late event showed they never happened.",
        _KS,
    ),
    _proc(
        "callfloor_events_total", _C, "Valid events applied, by type (not duplicates).", ("type",)
    ),
    _proc(
        "callfloor_events_rejected_total",
        _C,
        "Invalid or refused events, by reason.",
        ("reason",),
    ),
    _proc("callfloor_events_duplicate_total", _C, "Duplicate events dropped."),
    _proc(
        "callfloor_events_orphaned_total",
        _C,
        "Events for a call with no open leg or conversation (they change nothing else).",
    ),
    _proc(
        "callfloor_events_late_total",
        _C,
        "Events older than the clock, applied at their own time.",
    ),
    _proc(
        "callfloor_clock_seconds",
        _G,
        "The processor clock (event time), Unix seconds; absent before the first event.",
        unit=Unit.UNIX_SECONDS,
    ),
    _proc("callfloor_open_legs", _G, "Calls waiting in any queue."),
    _proc(
        "callfloor_metrics_queues_omitted",
        _G,
        "Queues created by events alone that have no per-queue series here, beyond "
        "[metrics] max_unconfigured_queues (they still count in their site's series).",
    ),
    _proc("callfloor_timers_pending", _G, "Deadlines in the timer heap (some may be stale)."),
)

_AT = ("agent", "team")


def _agent(name: str, help_text: str, labels: tuple[str, ...] = _AT, unit: Unit = _N) -> Family:
    return Family(name, _G, help_text, labels, unit, Group.AGENT)


AGENT_FAMILIES: Final[tuple[Family, ...]] = (
    _agent(
        "callfloor_agent_info",
        "Agent metadata (always 1): display name, team and site from its latest agent_state.",
        ("agent", "name", "team", "site"),
    ),
    _agent("callfloor_agent_state", "1 for the agent's current state.", ("agent", "team", "state")),
    _agent(
        "callfloor_agent_state_seconds",
        "Time in the agent's current spell, seconds.",
        unit=_S,
    ),
    _agent(
        "callfloor_agent_not_ready_today_seconds",
        "Non-exempt not-ready time since site-local midnight, seconds.",
        unit=_S,
    ),
    _agent("callfloor_agent_answered_today", "Calls the agent answered since site-local midnight."),
    _agent(
        "callfloor_agent_missed_today",
        "Calls the agent missed (call_missed) since site-local midnight.",
    ),
)


def _svc(
    name: str, kind: MetricType, help_text: str, labels: tuple[str, ...] = (), unit: Unit = _N
) -> Family:
    return Family(name, kind, help_text, labels, unit, Group.SERVICE)


SERVICE_FAMILIES: Final[tuple[Family, ...]] = (
    _svc("callfloor_http_requests_total", _C, "HTTP requests by handler.", ("handler",)),
    _svc(
        "callfloor_http_errors_total",
        _C,
        "HTTP answers with an error status (4xx, 5xx), by status code.",
        ("code",),
    ),
    _svc(
        "callfloor_ingest_batch_seconds",
        MetricType.SUMMARY,
        "Time spent applying ingest batches.",
        unit=_S,
    ),
    _svc(
        "callfloor_ingest_batch_seconds_max",
        _G,
        "Longest time spent applying one ingest batch since start-up, seconds.",
        unit=_S,
    ),
    _svc("callfloor_ingest_events_total", _C, "Events received, by source.", ("source",)),
    _svc(
        "callfloor_ingest_resent_events_total",
        _C,
        "Events recognised as resends of what the service already had (a client's retry of "
        "a whole body, a broker's redelivery): acknowledged, not applied, not counted as "
        "duplicates in the document. By source.",
        ("source",),
    ),
    _svc(
        "callfloor_ingest_dropped_batches_total",
        _C,
        "Ingest batches refused by back-pressure (too many events pending).",
    ),
    _svc(
        "callfloor_ingest_dropped_events_total",
        _C,
        "Events in the ingest batches refused by back-pressure.",
    ),
    _svc(
        "callfloor_ingest_held_events",
        _G,
        "Events received ahead of the watermark (wall clock minus the delay), not applied yet.",
    ),
    _svc(
        "callfloor_ingest_pending_events",
        _G,
        "Events accepted but not applied yet: queued for the next ingest round plus held "
        "ahead of the watermark (back-pressure starts at [limits] max_pending_events).",
    ),
    _svc(
        "callfloor_ingest_errors_total",
        _C,
        "Unexpected errors caught in ingest rounds (the event that caused one is rejected; "
        "the service goes on).",
    ),
    _svc(
        "callfloor_changes_dropped_total",
        _C,
        "Change sets a slow change-stream subscriber lost (oldest dropped first), by "
        "subscriber kind.",
        ("subscriber",),
    ),
    _svc(
        "callfloor_source_up",
        _G,
        "1 while the event source is running, 0 while it is down (restarting with backoff).",
        ("source",),
    ),
    _svc(
        "callfloor_source_restarts_total",
        _C,
        "Restarts of the event source after it failed or ended.",
        ("source",),
    ),
    _svc("callfloor_mqtt_messages_total", _C, "MQTT messages received, by source.", ("source",)),
    _svc(
        "callfloor_mqtt_redelivered_total",
        _C,
        "MQTT messages the broker sent again (DUP flag: not acknowledged before a reconnect).",
        ("source",),
    ),
    _svc(
        "callfloor_mqtt_acks_lost_total",
        _C,
        "MQTT messages whose PUBACK was not sent because the connection closed first (the "
        "broker delivers them again; the floor drops them as duplicates).",
        ("source",),
    ),
    _svc(
        "callfloor_mqtt_deadletters_total",
        _C,
        "MQTT dead letters published on callfloor/<site>/deadletter: malformed messages, "
        "invalid items, events refused by a limit, by reason.",
        ("source", "reason"),
    ),
    _svc(
        "callfloor_store_up",
        _G,
        "1 while the store makes events durable, 0 while appends fail (nothing is "
        "acknowledged then: HTTP answers 503, MQTT messages wait at the broker).",
    ),
    _svc(
        "callfloor_store_append_errors_total",
        _C,
        "Appends to the store that failed (each is retried until it succeeds).",
    ),
    _svc(
        "callfloor_store_errors_total",
        _C,
        "Other store operations that failed and were retried, by operation.",
        ("op",),
    ),
    _svc("callfloor_store_reconnects_total", _C, "Connections to the store made again."),
    _svc("callfloor_checkpoints_total", _C, "Checkpoints written (one per partition each time)."),
    _svc("callfloor_checkpoint_errors_total", _C, "Checkpoints that could not be written."),
    _svc(
        "callfloor_checkpoint_seconds",
        _G,
        "Time the last checkpoint took (encode and save), seconds.",
        unit=_S,
    ),
    _svc(
        "callfloor_recovered_events_total",
        _C,
        "Events replayed from the store's log at start or when a partition was adopted.",
    ),
    _svc(
        "callfloor_partitions_owned",
        _G,
        "Partitions of the floor this process applies (with a shared store, those whose "
        "lease it holds).",
    ),
    _svc(
        "callfloor_partition_adoptions_total",
        _C,
        "Partitions taken on (restored from their checkpoint and log).",
    ),
    _svc(
        "callfloor_partition_drops_total",
        _C,
        "Partitions given up (handed over, or their lease lost).",
    ),
    _svc(
        "callfloor_leases_lost_total",
        _C,
        "Partitions whose lease was lost: found held by another process, or not renewed "
        "within 0.4 x lease_ttl (Redis unreachable); each is stopped at once.",
    ),
    _svc(
        "callfloor_store_stale_entries_total",
        _C,
        "Followed log entries not applied because they were not contiguous with the "
        "partition (read before a hand-over or while it was adopted, or read twice; their "
        "events come from the replay instead).",
    ),
    _svc(
        "callfloor_store_bad_entries_total",
        _C,
        "Log entries that could not be decoded (not written by callfloor): skipped, "
        "logged with their stream and id.",
    ),
    _svc(
        "callfloor_store_append_retries_found_total",
        _C,
        "Appends retried after the store's answer was lost that the store turned out to "
        "have done (not logged twice).",
    ),
    _svc(
        "callfloor_partition_adoption_errors_total",
        _C,
        "Partitions whose adoption failed (lease released, tried again later).",
    ),
    _svc(
        "callfloor_partition_handovers_total",
        _C,
        "Partitions handed over to the process wanted for them (last checkpoint, lease released).",
    ),
    _svc(
        "callfloor_follow_rewinds_total",
        _C,
        "Times the follower read a stream again from where the partition stands (after "
        "an adoption, or entries it delivered were not taken).",
    ),
    _svc(
        "callfloor_redis_floor_up",
        _G,
        "1 while the live floor in Redis is written, 0 while its writes fail (only with "
        "a redis:// store).",
    ),
    _svc(
        "callfloor_redis_floor_errors_total",
        _C,
        "Failed Redis calls of the live floor (each retried with back-off).",
    ),
    _svc(
        "callfloor_redis_floor_resyncs_total",
        _C,
        "Whole rewrites of the live floor in Redis (after a failure, a drop or a change "
        "of partitions).",
    ),
)

CATALOGUE: Final[tuple[Family, ...]] = (
    *QUEUE_FAMILIES,
    *SITE_FAMILIES,
    *PROCESSOR_FAMILIES,
    *AGENT_FAMILIES,
    *SERVICE_FAMILIES,
)
"""Every family, in exposition order."""

BY_NAME: Final[Mapping[str, Family]] = {f.name: f for f in CATALOGUE}
"""Families by name."""


def families(groups: tuple[Group, ...]) -> list[Family]:
    """The families of these groups, in exposition order."""
    return [f for f in CATALOGUE if f.group in groups]

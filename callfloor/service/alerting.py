"""Alerts in the live service: an engine per partition, its checkpoint section, the
outbox to the sinks, and the operator commands (acknowledge, silence).

Each partition's processor gets an :class:`~callfloor.alerts.driver.AlertDriver`
when the partition is made (:meth:`AlertService.attach`), so live operation, recovery
and replay evaluate rules the same way. After each writer tick the notifications the
engines emitted are drained (:meth:`AlertService.drain`) into the
:class:`~callfloor.sinks.alerts.Outbox`, which delivers them without ever blocking the
writer.

What was notified is part of the checkpointed alert state (the ``alerts`` section):
each alert's lifecycle, the silences, and the keys delivered lately, so a restart
neither forgets a firing alert nor sends again what was delivered before the
checkpoint (notifications re-derived from the log after it carry the same idempotency
key, for receivers that deduplicate). A backfill notifies only what fires now or
resolved within ``[alerts] notify_backfill``: older history goes to the list.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import msgspec

from callfloor.alerts.driver import AlertDriver, DriverState, attach_alerts
from callfloor.alerts.engine import MAX_SILENCES, Alert, Silence
from callfloor.alerts.notification import Notification, Transition
from callfloor.config import Config
from callfloor.processors.state import register_section
from callfloor.web.server import RateLimitedLog

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor
    from callfloor.service.stats import IngestStats
    from callfloor.service.writer import Writer
    from callfloor.sinks.alerts.outbox import Outbox

__all__ = ["ALERTS_SECTION", "AlertSection", "AlertService"]

log = logging.getLogger("callfloor.alerts")

DELIVERED_KEEP_S: Final = 48 * 3600.0
SNAPSHOT_EVERY_S: Final = 60.0
"""Event time between two alert snapshots (a late event re-derives from the one before it)."""
MAX_REDERIVE_EVENTS: Final = 50_000
"""A re-derivation applies at most this many kept events."""
REDERIVE_SLICE: Final = 25
"""Kept events a re-derivation applies before it lets the writer and the HTTP server run
(tens of milliseconds with the default rules)."""
SAVED_EVENTS: Final = 20_000
"""A checkpoint keeps the oldest alert snapshot and the events since while there are no
more than this many, so late events after a restart are still re-derived."""
SNAPSHOT_KEEP_S: Final = 3600.0
"""Snapshots are kept this long: a later event late by more re-derives nothing."""


class AlertSection(msgspec.Struct, kw_only=True):
    """A partition's alert state in its checkpoint."""

    alerts: DriverState = msgspec.field(default_factory=DriverState)
    delivered: dict[str, float] = {}  # idempotency key -> when delivered (wall clock)
    pending: dict[str, list[Notification]] = {}  # not yet delivered, by sink


ALERTS_SECTION = register_section("alerts", AlertSection, AlertSection)


class AlertService:
    """The alert side of :class:`~callfloor.service.floor.FloorService`."""

    def __init__(self, config: Config, *, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.outbox: Outbox | None = None
        if config.alerts.sinks:
            from callfloor.sinks.alerts import Outbox, create_sinks

            self.outbox = Outbox(
                create_sinks(config.alerts.sinks),  # type: ignore[arg-type]
                on_delivered=self._delivered,
                clock=clock,
            )
        self.delivered: dict[str, float] = {}
        self.suppressed_backfill = 0  # notifications of old history not sent to people
        self.skip_log = RateLimitedLog(log)
        # Late events are re-derived by :meth:`run` when it runs (the live service), in
        # slices; without it (a writer driven by hand) at once, after the tick.
        self._running = False
        self._late = asyncio.Event()
        self._late_procs: list[FloorProcessor] = []
        self.rederive_failures = 0

    # ------------------------------------------------------------------ partitions

    def attach(self, proc: FloorProcessor) -> AlertDriver | None:
        """Give ``proc`` an alert driver (once), emitting notifications."""
        observer = proc.observer
        if isinstance(observer, AlertDriver):
            return observer
        driver = attach_alerts(proc, proc.config, notify=True)
        if driver is not None:
            driver.keep_events()
        return driver

    def after_round(self, procs: list[FloorProcessor]) -> None:
        """After a round: send what its events raised (late events are re-derived once a
        tick, not per round)."""
        self.drain(procs)

    def _rederive(self, procs: list[FloorProcessor]) -> None:
        """Late events in the tick: derive those partitions' timelines again, at once."""
        for proc in procs:
            driver = proc.observer
            if isinstance(driver, AlertDriver) and driver.late_since is not None:
                late = driver.late_since
                if not driver.rederive(MAX_REDERIVE_EVENTS):
                    self._skipped(late)

    def _skipped(self, late: float) -> None:
        self.skip_log.warning(
            "alerts_rederive_skipped late_ts=%s: older than the oldest alert "
            "snapshot (kept %g s, not across a restart) or more than %d events "
            "after it; its alert instants are those at the clock",
            late,
            SNAPSHOT_KEEP_S,
            MAX_REDERIVE_EVENTS,
        )

    async def run(self) -> None:
        """The service's task: re-derive after late events, a slice of
        :data:`REDERIVE_SLICE` events at a time, so that a producer sending events an
        hour late never stops the writer, the probes or the reads for the seconds a
        re-derivation of tens of thousands of events takes. Late events arriving
        meanwhile are re-derived together, by the next one."""
        self._running = True
        try:
            while True:
                await self._late.wait()
                self._late.clear()
                procs = self._late_procs
                for proc in procs:
                    driver = proc.observer
                    if not isinstance(driver, AlertDriver) or driver.late_since is None:
                        continue
                    late = driver.late_since
                    steps = driver.rederive_steps(MAX_REDERIVE_EVENTS, REDERIVE_SLICE)
                    while True:
                        try:
                            next(steps)
                        except StopIteration as done:
                            ok = bool(done.value)
                            break
                        except Exception:
                            # A fault in one partition's rules must not end the service
                            # (this task is in its task group): counted, logged.
                            ok = True
                            self.rederive_failures += 1
                            log.exception("alerts_rederive_error late_ts=%s", late)
                            break
                        await asyncio.sleep(0)
                    if not ok:
                        self._skipped(late)
                self.drain(procs)
        finally:
            self._running = False

    def after_tick(self, procs: list[FloorProcessor]) -> None:
        """Re-derive after late events (at most once a tick: a backfill's rounds do not
        each pay for it; in slices by :meth:`run` when it runs), take snapshots, send
        notifications."""
        if self._running:
            if any(
                isinstance(p.observer, AlertDriver) and p.observer.late_since is not None
                for p in procs
            ):
                self._late_procs = procs
                self._late.set()
        else:
            self._rederive(procs)
        for proc in procs:
            driver = proc.observer
            if isinstance(driver, AlertDriver):
                driver.snapshot(SNAPSHOT_EVERY_S, SNAPSHOT_KEEP_S)
        self.drain(procs)

    def dropped(self, key: str, proc: FloorProcessor) -> None:
        """A partition given up (its lease lost or handed over): its sites' queued
        notifications and kept-alive alerts are withdrawn from the sinks here (its new
        owner restores them from the partition's checkpoint and notifies for it)."""
        if self.outbox is None:
            return
        sites = set(proc.sites) | {q.site for q in proc.queues.values()}
        if sites:
            self.outbox.forget(sites)

    def hook(self, writer: Writer) -> None:
        """Keep the alert state in every checkpoint of ``writer``."""
        writer.add_section(
            ALERTS_SECTION,
            save=lambda key: self._save(writer, key),
            restore=lambda key, value: self._restore(writer, key, value),
        )

    def _driver(self, writer: Writer, key: str) -> AlertDriver | None:
        part = writer.parts.get(key)
        if part is None:
            return None
        return self.attach(part.proc)

    def _save(self, writer: Writer, key: str) -> AlertSection:
        driver = self._driver(writer, key)
        if driver is None:
            return AlertSection()
        horizon = self.clock() - DELIVERED_KEEP_S
        self.delivered = {k: t for k, t in self.delivered.items() if t >= horizon}
        pending: dict[str, list[Notification]] = {}
        if self.outbox is not None:
            for sink, notes in self.outbox.pending().items():
                mine = [n for n in notes if _owner(writer, n.site) == key]
                if mine:
                    pending[sink] = mine
        return AlertSection(
            alerts=driver.save(SAVED_EVENTS), delivered=dict(self.delivered), pending=pending
        )

    def _restore(self, writer: Writer, key: str, value: AlertSection) -> None:
        driver = self._driver(writer, key)
        if driver is None:
            return
        driver.load(value.alerts)
        # The restored state is a base late events can re-derive from.
        driver.snapshot(0.0, SNAPSHOT_KEEP_S)
        self.delivered.update(value.delivered)
        if self.outbox is not None:
            self.outbox.restore(
                {
                    sink: [n for n in notes if n.key not in self.delivered]
                    for sink, notes in value.pending.items()
                }
            )
            self.outbox.resume(
                _firing_notification(a, self.clock())
                for a in value.alerts.engine.active
                if a.state == "firing"
            )

    # ------------------------------------------------------------------ notifications

    def _delivered(self, sink: str, notification: Notification) -> None:
        self.delivered[notification.key] = self.clock()

    def drain(self, procs: list[FloorProcessor]) -> int:
        """Move the engines' notifications to the outbox; how many went."""
        notes: list[Notification] = []
        for proc in procs:
            driver = proc.observer
            if isinstance(driver, AlertDriver):
                notes.extend(driver.engine.drain())
        if not notes:
            return 0
        keep = self._current(notes)
        if self.outbox is not None:
            self.outbox.submit_all(keep)
        else:
            # No sink configured: the list (GET /api/v1/alerts) is where they are seen.
            for n in keep:
                log.debug(
                    "alert %s rule=%s scope=%s severity=%s value=%s",
                    n.transition,
                    n.rule,
                    n.scope,
                    n.severity,
                    n.value,
                )
        return len(keep)

    def _current(self, notes: list[Notification]) -> list[Notification]:
        """Leave out what was delivered already, and old history of a backfill: an alert
        that fired and resolved before now - notify_backfill tells nobody."""
        horizon = self.clock() - self.config.alerts.notify_backfill_s
        # Only episodes whose firing is in this same batch: one whose firing went out
        # earlier was told, and its end must follow however old it is (a feed behind
        # the wall clock, a resolve or withdrawal found by re-derivation).
        fired_here = {
            n.fingerprint + str(n.fired_at) for n in notes if n.transition == Transition.FIRING
        }
        resolved_long_ago = {
            n.fingerprint + str(n.fired_at)
            for n in notes
            if n.transition in (Transition.RESOLVED, Transition.WITHDRAWN)
            and n.ended_at is not None
            and n.ended_at < horizon
        } & fired_here
        out: list[Notification] = []
        for n in notes:
            if n.key in self.delivered:
                continue
            if n.fingerprint + str(n.fired_at) in resolved_long_ago:
                self.suppressed_backfill += 1
                continue
            out.append(n)
        return out

    def sync_stats(self, stats: IngestStats, procs: list[FloorProcessor]) -> None:
        """The alert gauges and counters for /metrics."""
        by_state: dict[tuple[str, str, str], int] = {}
        evaluations = done = skipped = 0
        seconds = 0.0
        for proc in procs:
            driver = proc.observer
            if not isinstance(driver, AlertDriver):
                continue
            evaluations += driver.evaluations
            seconds += driver.evaluation_seconds
            done += driver.rederivations
            skipped += driver.rederivations_skipped
            if proc.clock == float("-inf"):
                continue
            for a in driver.engine.listed(_day_start(proc)):
                key = (a.rule, a.severity, a.state)
                by_state[key] = by_state.get(key, 0) + 1
        stats.alerts_by_state = by_state
        stats.alert_evaluations_total = evaluations
        stats.alert_evaluation_seconds_total = seconds
        stats.alert_rederivations_total = {
            "done": done,
            "skipped": skipped,
            "failed": self.rederive_failures,
        }
        stats.alert_notifications_withheld_total = self.suppressed_backfill

    # ------------------------------------------------------------------ commands

    def alerts(self, procs: list[FloorProcessor]) -> list[Alert]:
        """Every listed alert of the local partitions, with its acknowledgement and,
        while it lasts, its value now (as ``/api/v1/snapshot`` lists it)."""
        out: list[Alert] = []
        for proc in procs:
            driver = proc.observer
            if isinstance(driver, AlertDriver):
                out.extend(driver.current(a) for a in driver.engine.listed(_day_start(proc)))
        return out

    def acknowledge(
        self, procs: list[FloorProcessor], fp: str, by: str, comment: str
    ) -> Alert | None:
        """Acknowledge firing alert ``fp`` wherever it fires; None if it fires nowhere."""
        for proc in procs:
            driver = proc.observer
            if isinstance(driver, AlertDriver):
                alert = driver.engine.acknowledge(fp, by, comment, proc.clock)
                if alert is not None:
                    return alert
        return None

    def silence(
        self,
        procs: list[FloorProcessor],
        *,
        rule: str,
        scope: str,
        duration_s: float,
        by: str,
        comment: str,
    ) -> Silence | None:
        """Silence matching alerts from now (event time) for ``duration_s``; None when
        :data:`MAX_SILENCES` are in force already."""
        now = max((p.clock for p in procs), default=self.clock())
        in_force = max(
            (
                p.observer.engine.silences_in_force(now)
                for p in procs
                if isinstance(p.observer, AlertDriver)
            ),
            default=0,
        )
        if in_force >= MAX_SILENCES:
            return None
        silence = Silence(
            id=secrets.token_hex(8),
            rule=rule,
            scope=scope,
            starts_at=now,
            ends_at=now + duration_s,
            created_by=by,
            comment=comment,
        )
        for proc in procs:
            driver = proc.observer
            if isinstance(driver, AlertDriver):
                driver.engine.add_silence(silence)
        return silence

    def unsilence(self, procs: list[FloorProcessor], silence_id: str) -> bool:
        found = False
        for proc in procs:
            driver = proc.observer
            if isinstance(driver, AlertDriver):
                found = driver.engine.remove_silence(silence_id) or found
        return found

    def silences(self, procs: list[FloorProcessor]) -> list[Silence]:
        seen: dict[str, Silence] = {}
        for proc in procs:
            driver = proc.observer
            if isinstance(driver, AlertDriver):
                for s in driver.engine.silences.values():
                    seen[s.id] = s
        return sorted(seen.values(), key=lambda s: s.starts_at)


def _day_start(proc: FloorProcessor) -> Callable[[str], float]:
    """A site's local midnight at ``proc``'s clock."""
    now = proc.clock

    def start(site: str) -> float:
        return proc.calendar(site).day_start(now)

    return start


def _owner(writer: Writer, site: str) -> str | None:
    """The key of the local partition ``site`` belongs to (None: not applied here)."""
    part = writer._part(site)
    return None if part is None else part.key


def _firing_notification(a: Alert, now: float) -> Notification:
    """A restored firing alert as the sinks that keep alerts alive need to know it."""
    from callfloor.alerts.notification import idempotency_key

    assert a.fired_at is not None
    return Notification(
        key=idempotency_key(a.fingerprint, Transition.FIRING, a.fired_at),
        fingerprint=a.fingerprint,
        rule=a.rule,
        scope_kind=a.scope_kind,
        scope=a.scope,
        site=a.site,
        severity=a.severity,
        transition=Transition.FIRING,
        state="firing",
        since=a.since,
        fired_at=a.fired_at,
        ended_at=None,
        value=a.value,
        summary=f"{a.rule} on {a.scope_kind} {a.scope}",
        description="",
        labels={},
        emitted_at=now,
        acknowledged_by=a.acknowledged_by,
    )

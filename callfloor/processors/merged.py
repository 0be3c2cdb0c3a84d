"""Reads over several partitions' processors, as if they were one floor.

A process that owns several partitions of the floor (scale-out by site: each partition
is a set of sites with its own processor and checkpoint) answers reads with
:class:`MergedReader`, which has the :class:`~callfloor.processors.read.FloorReader`
interface. Partitions hold disjoint sites, so their queues, sites and agents do not
overlap: a name is read from the partition that has it, lists are unions, counters and
self-metrics are sums, and violations are merged in document order. (A name two
partitions both have, which only events naming a queue or agent under another
partition's site can cause, is read from the first partition in key order.)

With one partition the service reads that processor's own reader; this one is used
only when there are several, or none (a process standing by), or when a partition is
served *stale* (its lease lost: see ``callfloor.service.writer.Frozen``): its reader is
one of the readers, and :meth:`MergedReader.stale` names its sites.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TypeVar

from callfloor.config import Config
from callfloor.processors.read import FloorReader
from callfloor.processors.views import (
    AgentDetail,
    AgentInfo,
    AgentLimits,
    AgentView,
    AlertView,
    Counters,
    Document,
    NamePolicy,
    ProcessorStats,
    QueueInfo,
    QueueTotals,
    QueueView,
    SiteClock,
    SiteView,
    Staleness,
    SupervisorView,
    TileThresholds,
    ViolationCount,
    ViolationView,
    WallboardView,
)

_V = TypeVar("_V")
_B = TypeVar("_B", WallboardView, SupervisorView)

# Version numbers of one partition set stay below this; a new set starts above it.
_GENERATION = 1 << 48


class MergedReader(FloorReader):
    """The :class:`FloorReader` interface over several readers (see the module docstring).

    A subclass so that every reader of the floor takes it; it overrides every public
    read (a test checks that none is left to the single-processor implementation).

    ``generation`` grows whenever the set of partitions changes, so ``version`` (a
    cache key) changes too; ``clock`` is the instant reported when there is no
    partition at all; ``stale`` names the sites of readers served as they last stood
    (partitions not applied any more).
    """

    __slots__ = ("_clock", "_generation", "_readers", "_stale")

    def __init__(
        self,
        readers: Sequence[FloorReader],
        *,
        labels: Sequence[str],
        generation: int = 0,
        clock: float = float("-inf"),
        stale: Mapping[str, Staleness] | None = None,
    ) -> None:
        # FloorReader.__init__ is not called: there is no single processor to read.
        self._readers = list(readers)
        self._labels = list(labels)
        self._generation = generation
        self._clock = clock
        self._stale = dict(sorted(stale.items())) if stale else {}

    # ------------------------------------------------------------------ time

    @property
    def as_of(self) -> float:
        """The latest clock of the partitions (they are ticked together)."""
        return max((r.as_of for r in self._readers), default=self._clock)

    @property
    def version(self) -> int:
        """Grows whenever a partition's state changed, or the partition set did."""
        return self._generation * _GENERATION + sum(r.version for r in self._readers)

    @property
    def window_labels(self) -> list[str]:
        """Window labels in document order: the configured rolling ones, interval, today."""
        return list(self._labels)

    def _first(self, read: Callable[[FloorReader], _V | None]) -> _V | None:
        for reader in self._readers:
            found = read(reader)
            if found is not None:
                return found
        return None

    def _union(self, names: Callable[[FloorReader], list[str]]) -> list[str]:
        seen: dict[str, None] = {}
        for reader in self._readers:
            for name in names(reader):
                seen.setdefault(name)
        return list(seen)

    def _merge(self, part: Callable[[FloorReader], dict[str, _V]]) -> dict[str, _V]:
        merged: dict[str, _V] = {}
        for reader in self._readers:
            for name, value in part(reader).items():
                merged.setdefault(name, value)
        return dict(sorted(merged.items()))

    # ------------------------------------------------------------------ queues

    def queue_names(self) -> list[str]:
        """Listed queues of every partition, sorted."""
        return sorted(self._union(FloorReader.queue_names))

    def queue_names_by_arrival(self) -> list[str]:
        """Listed queues: each partition's in its own stable order, partition by partition."""
        return self._union(FloorReader.queue_names_by_arrival)

    def queue(self, name: str) -> QueueView | None:
        """The queue's document entry."""
        return self._first(lambda r: r.queue(name))

    def queue_info(self, name: str) -> QueueInfo | None:
        """The queue's identity and policy."""
        return self._first(lambda r: r.queue_info(name))

    def queue_totals(self, name: str) -> QueueTotals | None:
        """The queue's cumulative totals."""
        return self._first(lambda r: r.queue_totals(name))

    # ------------------------------------------------------------------ sites

    def site_names(self) -> list[str]:
        """Listed sites of every partition, sorted."""
        return sorted(self._union(FloorReader.site_names))

    def site(self, name: str) -> SiteView | None:
        """The site's document entry."""
        return self._first(lambda r: r.site(name))

    def site_clock(self, name: str) -> SiteClock:
        """The site's calendar, from the partition that has the site (else the first)."""
        for reader in self._readers:
            if name in reader.site_names():
                return reader.site_clock(name)
        if not self._readers:
            raise ValueError("the processor has no time yet: apply an event or tick() first")
        return self._readers[0].site_clock(name)

    # ------------------------------------------------------------------ boards

    def board_window(self) -> str:
        """The window of the rates on boards (as one reader chooses it)."""
        labels = self._labels[:-2]
        return "15m" if "15m" in labels else labels[0]

    def tile_thresholds(self, name: str) -> TileThresholds | None:
        """The colour bands of a queue's tile, from the partition that has the queue."""
        return self._first(lambda r: r.tile_thresholds(name))

    def agent_limits(self) -> AgentLimits:
        """The idle-time limits (the configuration's: every partition has the same)."""
        if not self._readers:
            raise ValueError("no partition is read here")
        return self._readers[0].agent_limits()

    def _marked(self, views: dict[str, _B]) -> dict[str, _B]:
        for site, view in views.items():
            mark = self._stale.get(site)
            if mark is not None:
                view.stale = mark
        return dict(sorted(views.items()))

    def wallboards(self, sites: Collection[str]) -> dict[str, WallboardView]:
        """Each partition's wallboards of ``sites``; a stale site's marked ``stale``."""
        out: dict[str, WallboardView] = {}
        for reader in self._readers:
            for site, view in reader.wallboards(sites).items():
                out.setdefault(site, view)
        return self._marked(out)

    def supervisor(self, sites: Collection[str], *, names: NamePolicy) -> dict[str, SupervisorView]:
        """Each partition's supervisor views of ``sites``; a stale site's marked ``stale``."""
        out: dict[str, SupervisorView] = {}
        for reader in self._readers:
            for site, view in reader.supervisor(sites, names=names).items():
                out.setdefault(site, view)
        return self._marked(out)

    # ------------------------------------------------------------------ agents

    def agent_names(self) -> list[str]:
        """Listed agents of every partition, sorted."""
        return sorted(self._union(FloorReader.agent_names))

    def agent(self, name: str) -> AgentView | None:
        """The agent's document entry."""
        return self._first(lambda r: r.agent(name))

    def agent_info(self, name: str, *, names: NamePolicy) -> AgentInfo | None:
        """The agent's identity (team, display name as ``names`` says, queues)."""
        return self._first(lambda r: r.agent_info(name, names=names))

    def agent_detail(self, name: str, *, names: NamePolicy) -> AgentDetail | None:
        """The agent's entry with its violations."""
        return self._first(lambda r: r.agent_detail(name, names=names))

    def violations(
        self, *, agent: str | None = None, active: bool | None = None
    ) -> list[ViolationView]:
        """Violations of every partition in document order (as one reader sorts them)."""
        items = [v for r in self._readers for v in r.violations(agent=agent, active=active)]
        items.sort(key=lambda v: (v.started_at, v.agent, v.kind.value, v.severity.value))
        return items

    # ------------------------------------------------------------------ bulk

    def queues(self) -> dict[str, QueueView]:
        """Every listed queue, by name (sorted)."""
        return self._merge(FloorReader.queues)

    def sites(self) -> dict[str, SiteView]:
        """Every listed site, by name (sorted)."""
        return self._merge(FloorReader.sites)

    def agents(self) -> dict[str, AgentView]:
        """Every listed agent, by name (sorted)."""
        return self._merge(FloorReader.agents)

    def floor(
        self, *, agents: bool = False
    ) -> tuple[dict[str, QueueView], dict[str, SiteView], dict[str, AgentView]]:
        """Queues, sites and (with ``agents``) agents of every partition."""
        parts = [r.floor(agents=agents) for r in self._readers]
        return (
            _merged([p[0] for p in parts]),
            _merged([p[1] for p in parts]),
            _merged([p[2] for p in parts]),
        )

    # ------------------------------------------------------------------ whole floor

    def counters(self) -> Counters:
        """The document's counters, summed."""
        total = Counters()
        for r in self._readers:
            c = r.counters()
            total.events += c.events
            total.rejected += c.rejected
            total.duplicates += c.duplicates
            total.orphaned += c.orphaned
            total.late += c.late
        return total

    def stats(self) -> ProcessorStats:
        """The processors' self-metrics, summed (the clock: the latest)."""
        every = [r.stats() for r in self._readers]
        clocks = [s.clock for s in every if s.clock is not None]
        return ProcessorStats(
            clock=max(clocks) if clocks else None,
            events_by_type=_summed([s.events_by_type for s in every]),
            rejected_by_reason=_summed([s.rejected_by_reason for s in every]),
            violations_active=_counts([s.violations_active for s in every]),
            violations_started=_counts([s.violations_started for s in every]),
            violations_retracted=_counts([s.violations_retracted for s in every]),
            expired=_summed([s.expired for s in every]),
            open_legs=sum(s.open_legs for s in every),
            timers_pending=sum(s.timers_pending for s in every),
            history_events=sum(s.history_events for s in every),
        )

    def stale(self) -> dict[str, Staleness]:
        """Sites served as they last stood (their partition not applied), by name."""
        return dict(self._stale)

    def alerts(self) -> list[AlertView]:
        """The alerts of every partition."""
        return [a for r in self._readers for a in r.alerts()]

    def document(self) -> Document:
        """The SPEC §7 document of the partitions together."""
        now = self.as_of
        if not math.isfinite(now):
            raise ValueError("the processor has no time yet: apply an event or tick() first")
        docs = [r.document() for r in self._readers]
        violations = [v for d in docs for v in d.violations]
        violations.sort(key=lambda v: (v.started_at, v.agent, v.kind.value, v.severity.value))
        return Document(
            as_of=float(now),
            queues=_merged([d.queues for d in docs]),
            sites=_merged([d.sites for d in docs]),
            agents=_merged([d.agents for d in docs]),
            violations=violations,
            alerts=[a for d in docs for a in d.alerts],
            counters=self.counters(),
        )


class MergedFloor:
    """What a metrics collector reads (``view`` and ``config``) for several partitions."""

    __slots__ = ("config", "view")

    def __init__(self, config: Config, view: MergedReader) -> None:
        self.config = config
        self.view = view


def _merged(parts: Sequence[dict[str, _V]]) -> dict[str, _V]:
    merged: dict[str, _V] = {}
    for part in parts:
        for name, value in part.items():
            merged.setdefault(name, value)
    return dict(sorted(merged.items()))


def _summed(tables: Sequence[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for table in tables:
        for key, n in table.items():
            total[key] = total.get(key, 0) + n
    return dict(sorted(total.items()))


def _counts(lists: Sequence[list[ViolationCount]]) -> list[ViolationCount]:
    total: dict[tuple[str, str], tuple[ViolationCount, int]] = {}
    for counts in lists:
        for c in counts:
            key = (c.kind.value, c.severity.value)
            found = total.get(key)
            total[key] = (c, c.count + (found[1] if found else 0))
    return [ViolationCount(c.kind, c.severity, n) for _, (c, n) in sorted(total.items())]

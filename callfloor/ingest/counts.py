"""Per-source counters of the source kit, labelled by source name and kind.

Every kind counts into the same families (``callfloor_source_*`` in the metric
catalogue) instead of adding fields per kind: records received, rejected by reason,
skipped (verbs that carry nothing for callfloor), dead-lettered by reason (and
those over the dead-letter rate, left unwritten),
reconnects, a file's rotations by how they were found, the gap while disconnected,
the read position and the lag. The service owns one :class:`SourceCounts`
(``IngestStats.source_counts``); a source run without a service (tests, benchmarks)
makes its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SourceKey = tuple[str, str]  # (source, kind)


@dataclass
class SourceCounts:
    """The counters of every kit source (see the module docstring)."""

    received_total: dict[SourceKey, int] = field(default_factory=dict)  # records read
    events_total: dict[SourceKey, int] = field(default_factory=dict)  # events mapped
    rejected_total: dict[tuple[str, str, str], int] = field(default_factory=dict)  # + reason
    skipped_total: dict[SourceKey, int] = field(default_factory=dict)
    deadletters_total: dict[tuple[str, str, str], int] = field(default_factory=dict)  # + reason
    deadletters_suppressed_total: dict[tuple[str, str, str], int] = field(
        default_factory=dict
    )  # + reason
    reconnects_total: dict[SourceKey, int] = field(default_factory=dict)
    rotations_total: dict[tuple[str, str, str], int] = field(default_factory=dict)  # + reason
    gap_seconds_total: dict[SourceKey, float] = field(default_factory=dict)
    position: dict[SourceKey, float] = field(default_factory=dict)
    lag_seconds: dict[SourceKey, float] = field(default_factory=dict)

    def register(self, key: SourceKey) -> None:
        """Show the source's counters from 0 before anything happened."""
        for counts in (
            self.received_total,
            self.events_total,
            self.skipped_total,
            self.reconnects_total,
        ):
            counts.setdefault(key, 0)
        self.gap_seconds_total.setdefault(key, 0.0)

    def add(self, counts: dict[SourceKey, int], key: SourceKey, n: int) -> None:
        """``counts[key] += n``."""
        counts[key] = counts.get(key, 0) + n

    def reject(self, key: SourceKey, reason: str, n: int = 1) -> None:
        """Count ``n`` records rejected for ``reason``."""
        k = (key[0], key[1], reason)
        self.rejected_total[k] = self.rejected_total.get(k, 0) + n

    def dead_letter(self, key: SourceKey, reason: str, n: int = 1) -> None:
        """Count ``n`` dead letters written for ``reason``."""
        k = (key[0], key[1], reason)
        self.deadletters_total[k] = self.deadletters_total.get(k, 0) + n

    def dead_letter_suppressed(self, key: SourceKey, reason: str) -> None:
        """Count a dead letter for ``reason`` left unwritten (over the rate)."""
        k = (key[0], key[1], reason)
        self.deadletters_suppressed_total[k] = self.deadletters_suppressed_total.get(k, 0) + 1

    def rotation(self, key: SourceKey, reason: str) -> None:
        """Count a rotation of the source's file, found as ``reason``."""
        k = (key[0], key[1], reason)
        self.rotations_total[k] = self.rotations_total.get(k, 0) + 1

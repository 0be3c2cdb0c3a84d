"""Asterisk's queue_log file: ``epoch|callid|queuename|agent|VERB|data1|data2|...``.

Every verb Asterisk 1.4 to 22 writes is known (see :data:`~callfloor.feeds.asterisk.VERBS`
for those that change the floor and :data:`~callfloor.feeds.asterisk.SKIPPED` for those
that carry nothing for callfloor); the data fields are not needed for the mapping
(times come from the epochs), so the field variants of older versions and forks (fewer
or more data fields) all map alike. A line that cannot be mapped is a
:class:`~callfloor.feeds.base.Rejected` with its reason and the line, caller numbers
redacted: fewer than five fields, an unreadable epoch, an unknown verb, or a verb
without a field it needs (a CONNECT with agent ``NONE``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import msgspec

from callfloor.events import MAX_TS, Event
from callfloor.feeds.asterisk import AsteriskCore
from callfloor.feeds.base import REDACTED, FeedOptions, MapResult, Rejected, conceal, redact_text
from callfloor.feeds.state import AsteriskState

TAG: Final = "ql"


def parse_epoch(text: str) -> float | None:
    """Epoch seconds from a queue_log time field; None when unreadable or out of range."""
    try:
        ts = float(text)
    except ValueError:
        return None
    if not math.isfinite(ts) or not 0.0 <= ts <= MAX_TS:
        return None
    return ts


def redact_fields(fields: list[str], verb: str | None) -> list[str]:
    """The fields of a line with caller numbers hidden.

    ENTERQUEUE's caller id (its second data field) goes whole; every other data field
    loses the runs of digits that look like a phone number. The first five fields
    (time, call id, queue, agent, verb) stay.
    """
    if len(fields) < 5:
        return [redact_text(f) for f in fields]
    data = fields[5:]
    if verb == "ENTERQUEUE" and len(data) >= 2 and data[1]:
        data[1] = REDACTED
    return fields[:5] + [redact_text(d) for d in data]


class QueueLogMapper:
    """Lines of a queue_log file to canonical events (pure; see the module docstring)."""

    tag: Final = TAG

    def __init__(self, options: FeedOptions | None = None) -> None:
        self.options = options or FeedOptions()
        self.core = AsteriskCore(self.options)
        self._keep = self.options.caller_ids == "keep"

    def snapshot(self) -> AsteriskState:
        """A copy of the state, for a checkpoint."""
        return self.core.snapshot()

    def restore(self, state: msgspec.Struct) -> None:
        """Continue from a snapshot."""
        self.core.restore(state)

    def finish(self, at: float | None = None) -> MapResult:
        """Nothing waits in a queue_log mapper: an empty result."""
        return MapResult()

    def raw(self, fields: list[str], verb: str | None) -> str:
        """A line for a rejection: as read, or with caller numbers redacted."""
        return "|".join(fields if self._keep else redact_fields(fields, verb))

    def truncated(self, line: bytes, position: int, index: int = 0) -> Rejected:
        """A last line without its newline (being written, or cut off)."""
        fields = line.decode("utf-8", "replace").split("|")
        verb = fields[4].strip() if len(fields) > 4 else None
        rejected = Rejected(
            index,
            position,
            "truncated_line",
            "the last line has no newline: it was still being written or the file was cut",
            self.raw(fields, verb),
            verb,
            parse_epoch(fields[0]),
        )
        return rejected if self._keep else conceal([rejected])[0]

    def feed(self, lines: Sequence[bytes], positions: Sequence[int]) -> MapResult:
        """Map complete lines (without their newlines); ``positions`` are byte offsets."""
        out = MapResult()
        events: list[Event] = out.events
        origins = out.origins
        record = self.core.record
        for index, line in enumerate(lines):
            fields = line.decode("utf-8", "replace").split("|")
            if len(fields) < 5:
                self._reject(
                    out,
                    index,
                    positions[index],
                    fields,
                    None,
                    "malformed_line",
                    f"expected at least 5 |-separated fields (epoch|callid|queue|agent|VERB), "
                    f"got {len(fields)}",
                    parse_epoch(fields[0]),
                )
                continue
            verb = fields[4].strip()
            try:
                ts = float(fields[0])
            except ValueError:
                ts = -1.0
            if not 0.0 <= ts <= MAX_TS:  # also false for nan
                self._reject(
                    out,
                    index,
                    positions[index],
                    fields,
                    verb,
                    "invalid_ts",
                    f"`epoch`: not a time in seconds since 1970: {fields[0][:40]!r}",
                    None,
                )
                continue
            problem = record(
                events,
                origins,
                index,
                positions[index],
                line,
                TAG,
                ts,
                verb,
                fields[1].strip(),
                fields[2].strip(),
                fields[3],
                fields[5:],
            )
            if problem is not None:
                if problem[0] == "skipped":
                    out.skip(verb)
                else:
                    self._reject(out, index, positions[index], fields, verb, *problem, ts)
        if not self._keep and out.rejected:
            conceal(out.rejected)
        return out

    def _reject(
        self,
        out: MapResult,
        index: int,
        position: int,
        fields: list[str],
        verb: str | None,
        reason: str,
        message: str,
        ts: float | None,
    ) -> None:
        out.rejected.append(
            Rejected(index, position, reason, message, self.raw(fields, verb), verb, ts)
        )

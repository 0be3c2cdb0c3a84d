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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter
from typing import Final

import msgspec

from callfloor.events import MAX_TS
from callfloor.feeds.asterisk import SKIPPED, VERB_INFO, AsteriskCore, Record
from callfloor.feeds.base import REDACTED, FeedOptions, MapResult, Rejected, conceal, redact_text
from callfloor.feeds.state import AsteriskState

TAG: Final = "ql"

_index: Final = attrgetter("index")


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


@dataclass(slots=True)
class Parsed:
    """Lines of a queue_log parsed: what :func:`parse_lines` gives.

    ``records`` are the lines with a readable epoch and a verb that changes the floor,
    in order, as ``(index, epoch, verb, call id, queue, agent, data)``: the call id,
    queue and verb stripped, the agent as written (the mapper names it), ``data`` the
    fields after the verb as written, still joined by ``|`` (None when there are none;
    only a few verbs read them). ``rejected`` are the lines that are not records, as
    ``(index, fields, verb, reason, message, epoch)``; ``skipped`` counts the lines of
    verbs that carry nothing for callfloor (:data:`~callfloor.feeds.asterisk.SKIPPED`).
    """

    records: list[Record] = field(default_factory=list)
    rejected: list[tuple[int, list[str], str | None, str, str, float | None]] = field(
        default_factory=list
    )
    skipped: dict[str, int] = field(default_factory=dict)


def _fields(parts: list[str]) -> list[str]:
    """All the fields of a line split at most five times."""
    return parts[:5] + parts[5].split("|") if len(parts) > 5 else parts


def parse_lines(lines: Sequence[bytes]) -> Parsed:
    """queue_log lines (without their newlines) to records: fields split, epoch checked,
    verb recognised (see :class:`Parsed`). Pure; the mapper takes the records one by
    one from :func:`iter_records` instead.
    """
    parsed = Parsed()
    parsed.records = list(iter_records(lines, parsed))
    return parsed


def iter_records(lines: Sequence[bytes], parsed: Parsed) -> Iterator[Record]:
    """:func:`parse_lines` a record at a time: the records are yielded, the other lines
    go to ``parsed.rejected`` and ``parsed.skipped`` as they are met (``parsed.records``
    is left alone). Each record is mapped while its strings are still in the cache.
    """
    rejected = parsed.rejected
    known = VERB_INFO
    texts = map(bytes.decode, lines, repeat("utf-8"), repeat("replace"))
    for index, parts in enumerate(map(str.split, texts, repeat("|"), repeat(5))):
        n = len(parts)
        if n < 5:
            rejected.append(
                (
                    index,
                    parts,
                    None,
                    "malformed_line",
                    f"expected at least 5 |-separated fields (epoch|callid|queue|agent|VERB), "
                    f"got {n}",
                    parse_epoch(parts[0]),
                )
            )
            continue
        try:
            ts = float(parts[0])
        except ValueError:
            ts = -1.0
        if not 0.0 <= ts <= MAX_TS:  # also false for nan
            rejected.append(
                (
                    index,
                    _fields(parts),
                    parts[4].strip(),
                    "invalid_ts",
                    f"`epoch`: not a time in seconds since 1970: {parts[0][:40]!r}",
                    None,
                )
            )
            continue
        verb = parts[4]
        if verb not in known:  # the verbs are written without spaces: strip only then
            verb = verb.strip()
            if verb not in known:
                if verb in SKIPPED:
                    skipped = parsed.skipped
                    skipped[verb] = skipped.get(verb, 0) + 1
                else:
                    rejected.append(
                        (
                            index,
                            _fields(parts),
                            verb,
                            "unknown_verb",
                            f"unknown queue_log verb {verb[:40]!r}",
                            ts,
                        )
                    )
                continue
        yield (
            index,
            ts,
            verb,
            parts[1].strip(),
            parts[2].strip(),
            parts[3],
            parts[5] if n > 5 else None,
        )


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

    def redact_raw(self, text: str) -> str:
        """The kept prefix of a line over max_line_bytes with its caller id hidden as in
        :meth:`raw` (ENTERQUEUE's goes whole)."""
        fields = text.split("|")
        return "|".join(redact_fields(fields, fields[4].strip() if len(fields) > 4 else None))

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
        parsed = Parsed()
        problems = self.core.apply(
            out.events, out.origins, iter_records(lines, parsed), lines, positions, TAG
        )
        out.skipped = parsed.skipped
        if parsed.rejected or problems:
            rejected = out.rejected
            for index, fields, verb, reason, message, ts in parsed.rejected:
                self._reject(out, index, positions[index], fields, verb, reason, message, ts)
            if problems:
                for index, reason, message, ts in problems:
                    fields = lines[index].decode("utf-8", "replace").split("|")
                    verb = fields[4].strip()
                    self._reject(out, index, positions[index], fields, verb, reason, message, ts)
                if parsed.rejected:
                    rejected.sort(key=_index)  # one rejection per line: back in line order
            if not self._keep:
                conceal(rejected)
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

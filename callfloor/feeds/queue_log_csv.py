"""queue_log as a database table export (CSV or tab-separated, with a header line).

Two layouts are recognised by their header:

- **Asterisk realtime** (FreePBX, Issabel, Elastix: the ``queue_log`` / ``queuelog``
  table): ``time, callid, queuename, agent, event, data1 .. data5`` (or one ``data``
  column holding the data fields joined by ``|``); an ``id`` column may lead. ``time`` is
  local text without an offset (``2018-11-30 12:29:50``, fractions allowed), read in the
  source's time zone (``FeedOptions.timezone``); an epoch number or a time with an
  offset is read as such.
- **PBXware** (Bicom): ``uid, date_time, callid, queue_name, type, event, param1,
  param2, param3, entpos, expos, htime, ttime, time``: ``date_time`` is the epoch, the
  agent is in ``type``, ``param1`` the caller id (on calls) or the dialled number (on
  outbound verbs), ``htime`` the wait (ring milliseconds on RINGNOANSWER), ``ttime`` the
  talk time. Its outbound verbs (OUTDIAL, OUTANSWER, OUTCANCEL, OUTCHANUNAVAIL,
  OUTCONGESTION, OUTTRANSFER) keep the agent busy, never available.

Rows then go through the same mapping as queue_log lines. The delimiter (``,``, tab or
``;``) is taken from the header. ``NULL`` and ``\\N`` are empty values.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from callfloor.events import Event
from callfloor.feeds.asterisk import NO_VALUE, AsteriskCore
from callfloor.feeds.base import (
    REDACTED,
    FeedFormatError,
    FeedOptions,
    MapResult,
    Rejected,
    conceal,
    redact_text,
)
from callfloor.feeds.queue_log import parse_epoch
from callfloor.feeds.state import AsteriskState

TAG: Final = "qlc"

REALTIME: Final = ("time", "callid", "queuename", "agent", "event")
PBXWARE: Final = ("date_time", "callid", "queue_name", "type", "event")

# A time that came back by more than this is the repeated hour of a DST change.
_FOLD_SLACK_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each field of a row is."""

    kind: str  # "realtime" or "pbxware"
    delimiter: str
    width: int
    time: int
    call: int
    queue: int
    agent: int
    verb: int
    data: tuple[int, ...]  # realtime: data1..data5 (or data); pbxware: param1..param3
    joined: bool  # realtime with one ``data`` column joined by "|"
    caller: tuple[int, ...]  # columns that hold caller numbers whatever the verb


def parse_header(line: str) -> Layout:
    """The layout a header line names; :class:`FeedFormatError` when it is neither."""
    delimiter = "\t" if "\t" in line else ";" if ";" in line and "," not in line else ","
    names = [n.strip().strip('"').lower() for n in next(csv.reader([line], delimiter=delimiter))]
    col = {n: i for i, n in enumerate(names)}
    if all(n in col for n in PBXWARE):
        params = tuple(col[n] for n in ("param1", "param2", "param3") if n in col)
        return Layout(
            "pbxware",
            delimiter,
            len(names),
            col["date_time"],
            col["callid"],
            col["queue_name"],
            col["type"],
            col["event"],
            params,
            False,
            (col["param1"],) if "param1" in col else (),
        )
    if all(n in col for n in REALTIME):
        numbered = tuple(col[f"data{k}"] for k in range(1, 6) if f"data{k}" in col)
        if numbered:
            data, joined = numbered, False
        elif "data" in col:
            data, joined = (col["data"],), True
        else:
            data, joined = (), False
        return Layout(
            "realtime",
            delimiter,
            len(names),
            col["time"],
            col["callid"],
            col["queuename"],
            col["agent"],
            col["event"],
            data,
            joined,
            (),
        )
    raise FeedFormatError(
        "the first line is not a queue_log table header: expected the columns "
        f"{', '.join(REALTIME)} (Asterisk realtime: FreePBX, Issabel) or "
        f"{', '.join(PBXWARE)} (PBXware), got {', '.join(names[:16]) or 'nothing'}"
    )


class QueueLogCsvMapper:
    """Rows of a queue_log table export to canonical events (pure).

    The first line fed is the header; it is part of the state (a live source restores
    it with the rest).
    """

    tag: Final = TAG

    def __init__(self, options: FeedOptions | None = None) -> None:
        self.options = options or FeedOptions()
        self.core = AsteriskCore(self.options)
        self._zone = ZoneInfo(self.options.timezone)
        self._keep = self.options.caller_ids == "keep"
        self._layout: Layout | None = None

    @property
    def layout(self) -> Layout | None:
        """The header's layout, once the header was fed."""
        return self._layout

    def snapshot(self) -> AsteriskState:
        """A copy of the state (the header included), for a checkpoint."""
        return self.core.snapshot()

    def restore(self, state: msgspec.Struct) -> None:
        """Continue from a snapshot."""
        self.core.restore(state)
        header = self.core.state.header
        self._layout = parse_header(header) if header is not None else None

    def finish(self, at: float | None = None) -> MapResult:
        """Nothing waits in this mapper: an empty result."""
        return MapResult()

    def _split(self, text: str) -> list[str]:
        layout = self._layout
        assert layout is not None
        if '"' not in text:
            return text.split(layout.delimiter)
        try:
            return next(csv.reader([text], delimiter=layout.delimiter))
        except (csv.Error, StopIteration):
            return text.split(layout.delimiter)

    def _raw(self, row: list[str], verb: str | None) -> str:
        layout = self._layout
        if self._keep or layout is None:
            return (layout.delimiter if layout else ",").join(row)
        out = list(row)
        if len(row) == layout.width:
            for i in layout.caller:
                if out[i] and out[i] not in NO_VALUE:
                    out[i] = REDACTED
            data = [out[i] for i in layout.data]
            if layout.joined and data:
                parts = data[0].split("|")
                if verb == "ENTERQUEUE" and len(parts) >= 2 and parts[1]:
                    parts[1] = REDACTED
                out[layout.data[0]] = "|".join(redact_text(p) for p in parts)
            else:
                if verb == "ENTERQUEUE" and len(data) >= 2 and data[1]:
                    out[layout.data[1]] = REDACTED
                for i in layout.data:
                    out[i] = redact_text(out[i])
            return layout.delimiter.join(out)
        return redact_text(layout.delimiter.join(out))

    def _time(self, text: str) -> float | None:
        """Epoch seconds of a row's time: an epoch, or text in the source's time zone."""
        layout = self._layout
        assert layout is not None
        text = text.strip()
        if layout.kind == "pbxware" or (text[:1].isdigit() and "-" not in text):
            return parse_epoch(text)
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            return None
        if local.tzinfo is not None:
            return local.timestamp()
        first = local.replace(tzinfo=self._zone).timestamp()
        second = local.replace(tzinfo=self._zone, fold=1).timestamp()
        if first != second:
            # The hour that repeats when clocks go back: the first time through unless
            # the log has already passed it (rows come in time order).
            latest = self.core.state.latest
            if latest is not None and first < latest - _FOLD_SLACK_S:
                return second
        return first

    def truncated(self, line: bytes, position: int, index: int = 0) -> Rejected:
        """A last line without its newline (being written, or cut off)."""
        text = line.decode("utf-8", "replace")
        if self._layout is None:
            return Rejected(
                index,
                position,
                "truncated_line",
                "the header line has no newline",
                redact_text(text),
            )
        row = self._split(text)
        verb = row[self._layout.verb].strip() if len(row) == self._layout.width else None
        rejected = Rejected(
            index,
            position,
            "truncated_line",
            "the last line has no newline: it was still being written or the file was cut",
            self._raw(row, verb),
            verb,
        )
        return rejected if self._keep else conceal([rejected])[0]

    def feed(self, lines: Sequence[bytes], positions: Sequence[int]) -> MapResult:
        """Map complete lines (the first one ever fed is the header)."""
        out = MapResult()
        events: list[Event] = out.events
        core = self.core
        for index, line in enumerate(lines):
            text = line.decode("utf-8", "replace")
            if self._layout is None:
                if text.startswith("\ufeff"):
                    text = text[1:]
                self._layout = parse_header(text)
                core.state.header = text
                continue
            layout = self._layout
            row = self._split(text)
            if len(row) != layout.width:
                out.rejected.append(
                    Rejected(
                        index,
                        positions[index],
                        "malformed_line",
                        f"expected {layout.width} columns as in the header, got {len(row)}",
                        self._raw(row, None),
                    )
                )
                continue
            verb = row[layout.verb].strip()
            ts = self._time(row[layout.time])
            if ts is None:
                column = "date_time" if layout.kind == "pbxware" else "time"
                out.rejected.append(
                    Rejected(
                        index,
                        positions[index],
                        "invalid_ts",
                        f"`{column}`: not a time: {row[layout.time][:40]!r}",
                        self._raw(row, verb),
                        verb,
                    )
                )
                continue
            if layout.joined:
                data = row[layout.data[0]].split("|")
            else:
                data = [row[i] for i in layout.data]
            problem = core.record(
                events,
                out.origins,
                index,
                positions[index],
                line,
                TAG,
                ts,
                verb,
                row[layout.call].strip(),
                row[layout.queue].strip(),
                row[layout.agent],
                data,
            )
            if problem is not None:
                if problem[0] == "skipped":
                    out.skip(verb)
                else:
                    out.rejected.append(
                        Rejected(
                            index,
                            positions[index],
                            problem[0],
                            problem[1],
                            self._raw(row, verb),
                            verb,
                            ts,
                        )
                    )
        if not self._keep and out.rejected:
            conceal(out.rejected)
        return out

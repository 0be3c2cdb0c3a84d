"""What every feed mapper shares: its result, its options, event ids, redaction, lines.

A *mapper* is a pure object, as h11 is for HTTP: records in (lines of a queue_log, rows
of a database export, AMI event blocks, Connect JSON records), canonical events and
rejections out. It does no I/O and reads no clock; its state (which calls wait where,
which queues each agent serves, ...) is a msgspec Struct it can hand out
(:meth:`Mapper.snapshot`) and take back (:meth:`Mapper.restore`), so a live source can
checkpoint it beside its read position. Replay, ``callfloor convert`` and the live
sources share the mappers.

Event ids are deterministic: a function of the record's content and its position (the
byte offset of a line in its file), so reading the same line again after a crash gives
the same ids and the floor drops the events as resends.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import add as _add
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

import msgspec

from callfloor.events import Event

if TYPE_CHECKING:
    from callfloor.config import Config

REDACTED: Final = "[redacted]"

_crc32 = zlib.crc32
_adler32 = zlib.adler32

REJECTION_REASONS: Final[tuple[str, ...]] = (
    "malformed_line",  # not the record's shape (too few fields, a broken CSV row)
    "unknown_verb",  # a verb (queue_log) or record kind (Connect) the mapper does not know
    "invalid_ts",  # a time that cannot be read or is out of range
    "missing_field",  # a field the mapping needs is empty (or NONE)
    "truncated_line",  # the last line of a file has no newline: it was still being written
    "invalid_json",  # a Connect line that is not a JSON object
)

ItemT = TypeVar("ItemT", contravariant=True)


class FeedFormatError(ValueError):
    """Input that no record of can be mapped (a database export with an unknown header)."""


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """What the mappers need to know of the floor: sites, names, privacy, time zone.

    ``queue_sites`` is each configured queue's site (``[queues.X] site``); events of
    other queues (and agents that serve none) go to ``default_site``. ``aliases`` maps
    an agent as the log writes it (``Local/1127@callback-agent``) to one name; with
    ``strip_technology`` a name not in the map loses its technology prefix and
    ``@context`` (``Agent/1127`` and ``SIP/1127`` are both ``1127``). ``timezone`` is
    the zone of a database export whose times are local text without an offset.
    """

    default_site: str = "default"
    queue_sites: Mapping[str, str] = field(default_factory=dict)
    caller_ids: str = "redact"
    aliases: Mapping[str, str] = field(default_factory=dict)
    strip_technology: bool = True
    timezone: str = "UTC"
    connect_queues: Mapping[str, str] = field(default_factory=dict)
    connect_agents: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls, config: Config, *, site: str | None = None, timezone: str | None = None
    ) -> FeedOptions:
        """Options from the configuration, with the command line's ``site`` and ``timezone``.

        The time zone of local-text exports is ``timezone``, else ``[asterisk] timezone``,
        else the time zone of the default site (``"UTC"`` unless configured).
        """
        default_site = site or "default"
        zone = timezone or config.asterisk.timezone or config.site(default_site).timezone
        return cls(
            default_site=default_site,
            queue_sites={n: q.site for n, q in config.queues.items() if q.site is not None},
            caller_ids=config.privacy.caller_ids,
            aliases=dict(config.asterisk.aliases),
            strip_technology=config.asterisk.strip_technology,
            timezone=zone,
            connect_queues=dict(config.connect.queues),
            connect_agents=dict(config.connect.agents),
        )

    def site_of(self, queue: str | None) -> str:
        """The site of a queue: the configured one, else the default site."""
        if queue is None:
            return self.default_site
        return self.queue_sites.get(queue, self.default_site)


@dataclass(slots=True)
class Rejected:
    """One record that could not be mapped: where it was, why, and the record itself.

    ``raw`` is the record as read with caller numbers redacted (unless ``[privacy]
    caller_ids = "keep"``): it goes to dead letters and summaries.
    """

    index: int  # the record's index in the batch given to feed()
    position: int  # the caller's position of it (a line's byte offset)
    reason: str  # one of REJECTION_REASONS
    message: str
    raw: str
    verb: str | None = None
    ts: float | None = None


@dataclass(slots=True)
class MapResult:
    """What one call of a mapper produced.

    ``origins[i]`` is the index (in the batch) of the record ``events[i]`` came from; a
    record may give several events (CONNECT: the answer and the agent's ``on_call``).
    ``skipped`` counts records that carry nothing for callfloor, by verb; they are not
    errors.
    """

    events: list[Event] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, verb: str) -> None:
        """Count one record of ``verb`` as skipped."""
        self.skipped[verb] = self.skipped.get(verb, 0) + 1

    def extend(self, other: MapResult, offset: int = 0) -> None:
        """Append ``other`` (its indices shifted by ``offset``)."""
        self.events += other.events
        self.origins += [i + offset for i in other.origins]
        for r in other.rejected:
            r.index += offset
            self.rejected.append(r)
        for verb, n in other.skipped.items():
            self.skipped[verb] = self.skipped.get(verb, 0) + n


S = TypeVar("S", bound=msgspec.Struct)


class Mapper(Protocol, Generic[ItemT]):
    """The shape every feed mapper has (see the module docstring)."""

    def feed(self, items: Sequence[ItemT], positions: Sequence[int]) -> MapResult:
        """Map a batch of records; ``positions[i]`` is where ``items[i]`` was read."""
        ...

    def finish(self, at: float | None = None) -> MapResult:
        """Settle what waits for a later record (the end of input, or idle until ``at``)."""
        ...

    def snapshot(self) -> msgspec.Struct:
        """A copy of the state, for a checkpoint."""
        ...

    def restore(self, state: msgspec.Struct) -> None:
        """Continue from a state :meth:`snapshot` gave."""
        ...


def event_id(tag: str, position: int, raw: bytes) -> str:
    """The base id of a record: its position and a checksum of its content.

    The position makes identical records in one file distinct (the same pause twice in
    a second); the checksum (CRC-32 and Adler-32 of the record, 64 bits) makes the same
    position in another file (a rotated log starts again at 0) distinct. The events of
    the record get ``.0``, ``.1``, ... Two checksums instead of a cryptographic hash:
    a third of the cost per line, and no adversary chooses the lines of a PBX's log.
    """
    # %-formatting of one 64-bit number: the cheapest of the spellings measured.
    return "%s-%x-%x" % (tag, position, _crc32(raw) << 32 | _adler32(raw))  # noqa: UP031


# A run of 7 or more digits, optionally after "+", not part of a dotted number (an
# Asterisk uniqueid such as 1543602660.197 or an epoch with a fraction): a phone number.
_PHONE: Final = re.compile(r"(?<![\d.])\+?\d{7,}(?![\d.]|\d)")


def redact_text(text: str) -> str:
    """``text`` with every run that looks like a phone number replaced."""
    return _PHONE.sub(REDACTED, text)


def conceal(rejected: list[Rejected]) -> list[Rejected]:
    """Phone numbers out of what rejections say besides their raw text.

    A garbled line can put a caller's number where the verb or the time belongs, and
    messages and per-verb summaries quote those fields.
    """
    for r in rejected:
        r.message = redact_text(r.message)
        if r.verb is not None:
            r.verb = redact_text(r.verb)
    return rejected


def strip_agent(name: str) -> str:
    """``Local/1127@callback-agent/n`` -> ``1127``: no technology, no ``@context``."""
    if "/" in name:
        name = name.split("/", 1)[1]
    if "@" in name:
        name = name.split("@", 1)[0]
    return name


class LineSplitter:
    """Bytes in, complete lines out, each with the byte offset where it starts.

    Pure (no I/O): replay and ``convert`` push file chunks, a tailing source pushes what
    it read. A line is complete at its ``\\n``; what follows the last one waits in
    :attr:`rest` (a line still being written) until more data comes. ``\\r\\n`` endings
    are accepted (the ``\\r`` is dropped); blank lines are left out.
    """

    __slots__ = ("_offset", "line", "rest")

    def __init__(self, offset: int = 0, line: int = 1) -> None:
        self.rest = b""
        self._offset = offset  # byte offset of the start of ``rest``
        self.line = line  # 1-based line number of the start of ``rest``

    @property
    def offset(self) -> int:
        """The byte offset of the first byte not yet returned in a line."""
        return self._offset

    def push(self, data: bytes) -> tuple[list[bytes], list[int], list[int]]:
        """Lines completed by ``data``: (lines, their byte offsets, their line numbers)."""
        buf = self.rest + data if self.rest else data
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            self.rest = buf
            return [], [], []
        parts = buf.split(b"\n")
        self.rest = parts.pop()  # what follows the last newline
        if buf.find(b"\r", 0, cut) < 0 and min(parts)[:1] > b" ":
            # No line ends in \r, none is blank (none is empty or starts with a blank: the
            # least of them does not): each kept as it is, without a loop in Python.
            starts = list(accumulate(map(_add, map(len, parts), repeat(1)), initial=self._offset))
            self._offset = starts.pop()
            first = self.line
            self.line += len(parts)
            return parts, starts, list(range(first, self.line))
        lines: list[bytes] = []
        offsets: list[int] = []
        numbers: list[int] = []
        offset = self._offset
        number = self.line
        for part in parts:
            size = len(part) + 1
            if part.endswith(b"\r"):
                part = part[:-1]
            if part.strip():
                lines.append(part)
                offsets.append(offset)
                numbers.append(number)
            offset += size
            number += 1
        self._offset = offset
        self.line = number
        return lines, offsets, numbers

    def tail(self) -> tuple[bytes, int, int] | None:
        """The unfinished last line at the end of input (line, offset, number), if any."""
        rest = self.rest.rstrip(b"\r")
        if not rest.strip():
            return None
        return rest, self._offset, self.line


def struct_copy(state: S) -> S:
    """A deep copy of a state Struct (what :meth:`Mapper.snapshot` hands out)."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=type(state))

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

import hashlib
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
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
    "line_too_long",  # a line over max_line_bytes: skipped to its newline, never held whole
)

# The longest line a feed reader holds (``[[sources]] max_line_bytes``, replay and
# ``convert``'s default): a queue_log line is under 1 KB, a Connect record tens of KB.
MAX_LINE_BYTES: Final = 1 << 20
MAX_LINE_LIMIT: Final = 64 << 20  # the most max_line_bytes may be set to
# What a rejection keeps of its record (dead letters, logs, --rejects): its first bytes,
# with the record's size and SHA-256 when it was cut.
RAW_KEEP: Final = 4096
MESSAGE_KEEP: Final = 1024  # characters of a rejection's message
VERB_KEEP: Final = 64  # characters of a rejection's verb (a garbled line's field)

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
    # When ``raw`` is only the record's first bytes (it was longer than RAW_KEEP): the
    # record's size in bytes and its SHA-256 (hex), as read.
    size: int | None = None
    sha256: str | None = None


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


@dataclass(slots=True)
class LongLine:
    """A line over the splitter's ``max_line``: where it began, how long it was, its
    SHA-256 and first :data:`RAW_KEEP` bytes (the rest was never held)."""

    offset: int
    number: int
    size: int  # bytes before its newline (or before the end of input)
    sha256: str
    prefix: bytes
    ended: bool = True  # False: the input ended before its newline


class _Skip:
    """A line being skipped: its start, size so far, digest and first bytes."""

    __slots__ = ("digest", "number", "offset", "prefix", "size")

    def __init__(self, offset: int, number: int, parts: list[bytes]) -> None:
        self.offset = offset
        self.number = number
        self.size = 0
        self.prefix = b""
        self.digest = hashlib.sha256()
        for part in parts:
            self.add(part)

    def add(self, data: bytes) -> None:
        if len(self.prefix) < RAW_KEEP:
            self.prefix += data[: RAW_KEEP - len(self.prefix)]
        self.digest.update(data)
        self.size += len(data)

    def done(self, ended: bool) -> LongLine:
        return LongLine(
            self.offset, self.number, self.size, self.digest.hexdigest(), self.prefix, ended
        )


class LineSplitter:
    """Bytes in, complete lines out, each with the byte offset where it starts.

    Pure (no I/O): replay and ``convert`` push file chunks, a tailing source pushes what
    it read. A line is complete at its ``\\n``; what follows the last one waits (a line
    still being written) until more data comes, kept as a list of the chunks read, so
    a long line costs its length once, not once per read. ``\\r\\n`` endings are accepted
    (the ``\\r`` is dropped); blank lines are left out.

    A line longer than ``max_line`` bytes is not held: once the waiting bytes pass it,
    they are dropped and the rest of the line is only counted and hashed up to its
    newline (bounded memory whatever its length); it comes out of :meth:`take_long` as
    a :class:`LongLine`, and the lines after it come out as usual. While a line is
    skipped :attr:`offset` stays at its start, so a position saved then makes a reader
    started again skip the same line whole (never take its end for a line).
    """

    __slots__ = ("_long", "_offset", "_parts", "_pending", "_skip", "line", "max_line")

    def __init__(self, offset: int = 0, line: int = 1, max_line: int = MAX_LINE_BYTES) -> None:
        self._parts: list[bytes] = []  # the waiting unfinished line, as read
        self._pending = 0  # its length
        self._skip: _Skip | None = None  # the line over max_line being skipped
        self._long: list[LongLine] = []
        self._offset = offset  # byte offset of the start of the waiting line
        self.line = line  # 1-based line number of the start of the waiting line
        self.max_line = max_line

    @property
    def offset(self) -> int:
        """The byte offset of the first byte not yet returned in a line."""
        return self._offset

    @property
    def rest(self) -> bytes:
        """The unfinished line waiting for its newline (empty while one is skipped)."""
        if len(self._parts) > 1:
            self._parts = [b"".join(self._parts)]
        return self._parts[0] if self._parts else b""

    @property
    def read_to(self) -> int:
        """The byte offset after the last byte pushed."""
        skipped = self._skip.size if self._skip is not None else 0
        return self._offset + self._pending + skipped

    def take_long(self, final: bool = False) -> list[LongLine]:
        """The lines over ``max_line`` found since the last call; with ``final`` (the end
        of input) also the one being skipped, if any (``ended`` False)."""
        found, self._long = self._long, []
        if final and self._skip is not None:
            found.append(self._skip.done(False))
        return found

    def _ended(self, skip: _Skip) -> None:
        self._long.append(skip.done(True))
        self._skip = None
        self._offset += skip.size + 1
        self.line += 1

    def _wait(self, data: bytes) -> None:
        """``data`` (no newline in it) joins the waiting line, skipped once too long."""
        if self._skip is not None:
            self._skip.add(data)
            return
        self._parts.append(data)
        self._pending += len(data)
        if self._pending > self.max_line:
            self._skip = _Skip(self._offset, self.line, self._parts)
            self._parts = []
            self._pending = 0

    def push(self, data: bytes) -> tuple[list[bytes], list[int], list[int]]:
        """Lines completed by ``data``: (lines, their byte offsets, their line numbers)."""
        lines: list[bytes] = []
        offsets: list[int] = []
        numbers: list[int] = []
        if not data:
            return lines, offsets, numbers
        start = 0
        if self._skip is not None or self._parts:
            # Only the new bytes are searched: the waiting ones hold no newline.
            nl = data.find(b"\n")
            if nl < 0:
                self._wait(data)
                return lines, offsets, numbers
            self._wait(data[:nl])
            start = nl + 1
            if self._skip is not None:
                self._ended(self._skip)
            else:
                first = b"".join(self._parts)
                self._parts = []
                self._pending = 0
                self._emit([first], lines, offsets, numbers, False)
        cut = data.rfind(b"\n") + 1
        if cut > start:
            parts = data[start:cut].split(b"\n")
            parts.pop()  # the empty string after the last newline
            self._emit(parts, lines, offsets, numbers, data.find(b"\r", start, cut) < 0)
            start = cut
        if start < len(data):
            self._wait(data[start:] if start else data)
        return lines, offsets, numbers

    def _emit(
        self,
        parts: list[bytes],
        lines: list[bytes],
        offsets: list[int],
        numbers: list[int],
        no_cr: bool,
    ) -> None:
        if no_cr and min(parts)[:1] > b" " and max(map(len, parts)) <= self.max_line:
            # No line ends in \r, none is blank (none is empty or starts with a blank: the
            # least of them does not), none is too long: each kept as it is, without a
            # loop in Python.
            starts = list(accumulate(map(_add, map(len, parts), repeat(1)), initial=self._offset))
            self._offset = starts.pop()
            first = self.line
            self.line += len(parts)
            lines += parts
            offsets += starts
            numbers += range(first, self.line)
            return
        offset = self._offset
        number = self.line
        limit = self.max_line
        for part in parts:
            size = len(part) + 1
            if size > limit + 1:
                skip = _Skip(offset, number, [part])
                self._long.append(skip.done(True))
            else:
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

    def tail(self) -> tuple[bytes, int, int] | None:
        """The unfinished last line at the end of input (line, offset, number), if any
        (None while a line over ``max_line`` is skipped: see :meth:`take_long`)."""
        rest = self.rest.rstrip(b"\r")
        if not rest.strip():
            return None
        return rest, self._offset, self.line


_DIGITS_AT_END: Final = re.compile(r"\+?\d+$")


def _cut_text(text: str, keep: int) -> str:
    """At most ``keep`` UTF-8 bytes of ``text``, cut at a character boundary."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= keep:
        return text
    return data[:keep].decode("utf-8", "ignore")


def long_rejection(
    long: LongLine,
    index: int,
    limit: int,
    *,
    keep_callers: bool,
    redact: Callable[[str], str] | None = None,
) -> Rejected:
    """The ``line_too_long`` rejection of a line the splitter skipped.

    Its raw text is the line's first :data:`RAW_KEEP` bytes with caller numbers
    redacted (unless ``keep_callers``); a run of digits the cut ends in is dropped, as
    it may be the first digits of a number too short to be seen as one; ``redact`` is
    the format's own redaction (a queue_log caller id goes whole), applied first.
    """
    text = long.prefix.decode("utf-8", "ignore")
    if long.size > len(long.prefix):
        text = _DIGITS_AT_END.sub("", text)
    if not keep_callers:
        text = redact_text(redact(text) if redact is not None else text)
    end = "" if long.ended else ", and the input ended before its newline"
    # Kept whole (max_line under RAW_KEEP): no size and digest, as for a short record
    # (a digest beside the redacted whole would give the numbers away).
    whole = long.size <= len(long.prefix)
    return Rejected(
        index,
        long.offset,
        "line_too_long",
        f"a line of {long.size} bytes, over the {limit} byte limit (max_line_bytes){end}; "
        "skipped to its newline",
        text,
        size=None if whole else long.size,
        sha256=None if whole else long.sha256,
    )


def bound_raw(r: Rejected, record: bytes | None = None, keep: int = RAW_KEEP) -> Rejected:
    """Keep at most ``keep`` bytes of ``r.raw``; when it is cut, ``r.size`` says the
    size of the whole (``record`` as read, else the raw text) and ``r.sha256`` is the
    digest of the whole raw text: with caller numbers redacted, not of the record as
    read (cut by a few bytes, its text and that digest would give a number away to one
    trying every number)."""
    # A message or verb quotes fields of the record: bounded too.
    if len(r.message) > MESSAGE_KEEP:
        r.message = r.message[: MESSAGE_KEEP - 3] + "..."
    if r.verb is not None and len(r.verb) > VERB_KEEP:
        r.verb = r.verb[: VERB_KEEP - 3] + "..."
    if r.size is not None:  # already bounded (a line the splitter skipped)
        r.raw = _cut_text(r.raw, keep)
        return r
    cut = _cut_text(r.raw, keep)
    if cut is r.raw:
        # The whole text is kept (even of a record over ``keep`` bytes whose redacted
        # text is shorter): nothing was cut, and a digest of the record beside its
        # redacted text would give the numbers away by trying every number.
        return r
    text = r.raw.encode("utf-8", "surrogatepass")
    r.raw = cut
    r.size = len(record if record is not None else text)
    r.sha256 = hashlib.sha256(text).hexdigest()
    return r


class _LineFeeder(Protocol):
    options: FeedOptions

    def feed(self, items: Sequence[bytes], positions: Sequence[int]) -> MapResult: ...


def map_lines(
    mapper: _LineFeeder,
    lines: list[bytes],
    offsets: list[int],
    numbers: list[int],
    long: Sequence[LongLine],
    max_line: int,
) -> MapResult:
    """The lines a splitter gave through ``mapper``, its long lines as ``line_too_long``
    rejections after them (index ``len(lines) + k``; their numbers are appended to
    ``numbers``), every rejection's raw text bounded (:func:`bound_raw`)."""
    result = mapper.feed(lines, offsets) if lines else MapResult()
    for r in result.rejected:
        bound_raw(r, lines[r.index] if 0 <= r.index < len(lines) else None)
    keep = mapper.options.caller_ids == "keep"
    redact = getattr(mapper, "redact_raw", None)
    for k, line in enumerate(long):
        result.rejected.append(
            long_rejection(line, len(lines) + k, max_line, keep_callers=keep, redact=redact)
        )
        numbers.append(line.number)
    return result


def struct_copy(state: S) -> S:
    """A deep copy of a state Struct (what :meth:`Mapper.snapshot` hands out)."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=type(state))

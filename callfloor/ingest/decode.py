"""Bodies and lines to canonical events, rejecting bad events one by one.

A body may carry one JSON object, a JSON array of objects, or NDJSON (SPEC §1).
Each invalid event becomes a :class:`Rejection` whose message names the field and
whose ``reason`` is a short, low-cardinality code for counters; the valid events of
the same body are still returned.

Hostile input is part of the contract: nesting deeper than the decoder allows is an
``invalid_json`` rejection of that one item (the good items beside it decode), and
no message carries more than :data:`MESSAGE_MAX` characters back to a sender.
:func:`decode_request` is the fast path for request bodies: it lists only the first
:data:`LISTED_REJECTIONS` rejections in detail and counts every one by reason.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import msgspec

from callfloor.events import MAX_TS, Event

_EVENT: Final = msgspec.json.Decoder(Event)
_EVENTS: Final = msgspec.json.Decoder(list[Event])
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_ANY: Final = msgspec.json.Decoder()

REASONS: Final[tuple[str, ...]] = (
    "invalid_json",
    "not_an_object",
    "unknown_type",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "invalid_ts",
    "ts_in_future",
    "internal_error",  # applying the event raised: a bug, counted and logged, never fatal
)

LISTED_REJECTIONS: Final = 100
"""Rejections an answer lists in detail; the rest are counted (SPEC §9)."""

MESSAGE_MAX: Final = 300
"""The longest rejection message (decoder messages may quote the offending value)."""

_NESTED = "nested deeper than the decoder allows"

# Structural tokens of a JSON text for splitting an array the decoder cannot take
# whole: strings (skipped; they may hold brackets), runs of openers or closers, commas.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[{]+|[\]}]+|,')
_OPENERS = frozenset(b"[{")

# Blank lines: one after another line (a literal first byte: a fast scan), or the first.
_BLANK_INSIDE: Final = re.compile(rb"\n[ \t\r]*\n")
_BLANK_FIRST: Final = re.compile(rb"[ \t\r]*\n")
_WHITESPACE: Final = b" \t\r\n"
BOM: Final = b"\xef\xbb\xbf"
"""A UTF-8 byte order mark: skipped at the start of a body or file (RFC 8259 allows it)."""

_AT_FIELD = re.compile(r"at `\$\.?([^`\[]*)")
_MISSING = re.compile(r"missing required field `([^`]+)`")


@dataclass(frozen=True, slots=True)
class Rejection:
    """One invalid event: where it was, why, and its time when that could be read."""

    index: int  # position in the body (0-based element or line number)
    reason: str  # one of REASONS
    field: str | None
    message: str
    ts: float | None = None


def _classify(message: str) -> tuple[str, str | None]:
    missing = _MISSING.search(message)
    if missing:
        return "missing_field", missing.group(1)
    at = _AT_FIELD.search(message)
    field = at.group(1) if at and at.group(1) else None
    if message.startswith("`ts`") or field == "ts":
        return "invalid_ts", "ts"
    if message.startswith("Expected `object`"):
        return "not_an_object", None
    if field == "type" and not message.startswith("Expected"):
        return "unknown_type", "type"
    if message.startswith("Expected"):
        # "Expected `str` of length >= 1" is the right type with a bad value.
        constraint = " of length " in message or "` >= " in message or "` <= " in message
        return ("invalid_value" if constraint else "wrong_type"), field
    if message.startswith("`"):  # raised by the schema itself, e.g. "`ts`: ..."
        name = message[1 : message.index("`", 1)]
        return "invalid_value", name
    return "invalid_value", field


def _loose_ts(raw: bytes) -> float | None:
    """The ``ts`` of an invalid event if it is readable and in range (replay's ``--at`` cut)."""
    ts = _any_ts(raw)
    if ts is None or not 0.0 <= ts <= MAX_TS:
        return None
    return ts


def _any_ts(raw: bytes) -> float | None:
    try:
        obj = _ANY.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    ts = obj.get("ts")
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts)
            return parsed.timestamp() if parsed.tzinfo is not None else None
        except (ValueError, OverflowError):
            return None
    return None


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def _describe(exc: Exception) -> tuple[str, str | None, str]:
    """(reason, field, message) of a decoding error."""
    if isinstance(exc, RecursionError):
        return "invalid_json", None, f"not valid JSON: {_NESTED}"
    message = str(exc)
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return "invalid_json", None, _cut(f"not valid JSON: {message}")
    reason, field = _classify(message)
    if reason == "missing_field":
        text = f"missing required field `{field}`"
    elif field is not None and "`" not in message[:1]:
        text = f"`{field}`: {message.split(' - at ')[0]}"
    else:
        text = message
    if reason == "invalid_ts":
        text += _ts_hint(text)
    return reason, field, _cut(text)


def _ts_hint(text: str) -> str:
    """What a sender most likely did wrong with a ``ts`` (SPEC: epoch seconds or RFC 3339).

    A quoted epoch (``"1765100000"``) fails as RFC 3339 text, which msgspec's message
    does not explain; milliseconds are said by the event's own check
    (:mod:`callfloor.events`).
    """
    if "RFC3339" in text:
        return (
            "; send a number of seconds (not a quoted one) or RFC 3339 text with an offset "
            "(2026-12-07T09:00:00Z)"
        )
    return ""


def reject(raw: bytes, index: int, exc: Exception) -> Rejection:
    """Describe why ``raw`` is not a valid event."""
    reason, field, text = _describe(exc)
    ts = None if reason == "invalid_json" else _loose_ts(raw)
    return Rejection(index, reason, field, text, ts)


def decode_line(line: bytes, index: int = 0) -> Event | Rejection:
    """One NDJSON line (or one object body) to an event or a rejection."""
    try:
        event: Event = _EVENT.decode(line)
    except (msgspec.DecodeError, RecursionError) as exc:  # ValidationError is a DecodeError
        return reject(line, index, exc)
    return event


def split_array(text: bytes) -> list[bytes]:
    """The elements of a JSON array the decoder cannot take whole (too deep to split).

    Only the top level is split; an element that never closes runs to the end of
    the text. Elements are returned as they are, for :func:`decode_line` to judge.
    """
    parts: list[bytes] = []
    depth = 0
    start = 1
    for match in _TOKENS.finditer(text):
        token = match.group()
        first = token[0]
        if first == 0x22:  # a string
            continue
        if first == 0x2C:  # a comma
            if depth == 1:
                parts.append(text[start : match.start()])
                start = match.end()
        elif first in _OPENERS:
            depth += len(token)
        else:
            if depth - len(token) <= 0:  # this run closes the top-level array
                end = match.start() + depth - 1
                last = text[start:end]
                if last.strip() or parts:
                    parts.append(last)
                return parts
            depth -= len(token)
    parts.append(text[start:])
    return parts


def has_blank_line(chunk: bytes) -> bool:
    """Whether a line of ``chunk`` (lines end with a newline, the last one may not) is blank.

    msgspec's ``decode_lines`` reads whitespace-separated values, not lines: its count
    equals the line count with every line holding one value, or with a blank line and
    a line holding two. Without a blank line, equal counts mean one value per line.
    """
    if _BLANK_FIRST.match(chunk) or _BLANK_INSIDE.search(chunk):
        return True
    if chunk.endswith(b"\n"):
        return False
    return not chunk[chunk.rfind(b"\n") + 1 :].strip(_WHITESPACE)  # an unfinished last line


def _text(body: bytes) -> bytes:
    """The body without surrounding whitespace and a leading byte order mark."""
    text = body.strip()
    if text.startswith(BOM):
        text = text[len(BOM) :].strip()
    return text


def _items(text: bytes) -> list[tuple[int, Event | Rejection]]:
    """(position, event or rejection) for a body of one object, an array, or NDJSON."""
    if text[:1] == b"[":
        try:
            return list(enumerate(_EVENTS.decode(text)))
        except (msgspec.DecodeError, RecursionError):
            pass
        try:
            raws: list[bytes] = [bytes(raw) for raw in _RAW_LIST.decode(text)]
        except RecursionError:
            raws = split_array(text)
        except msgspec.DecodeError as exc:
            return [(0, reject(text, 0, exc))]
        return [(i, decode_line(raw, i)) for i, raw in enumerate(raws)]
    lines = text.split(b"\n")
    if len(lines) > 1:
        try:
            _ANY.decode(text)
        except (msgspec.DecodeError, RecursionError):
            pass  # NDJSON (or broken): each line on its own
        else:
            lines = [text]  # one object spread over several lines
    return [(i, decode_line(line.strip(), i)) for i, line in enumerate(lines) if line.strip()]


def _future(index: int, ts: float) -> Rejection:
    return Rejection(
        index,
        "ts_in_future",
        "ts",
        f"`ts`: {ts} is more than the allowed skew ahead of the server clock",
        ts,
    )


def decode_body(body: bytes, not_after: float | None = None) -> tuple[list[Event], list[Rejection]]:
    """Decode a body that holds one object, a JSON array of objects, or NDJSON.

    With ``not_after``, an event whose ``ts`` is later is rejected as ``ts_in_future``:
    a producer whose clock runs far ahead would otherwise drag every window forward.
    """
    text = _text(body)
    if not text:
        return [], []
    events: list[Event] = []
    rejections: list[Rejection] = []
    for i, item in _items(text):
        if isinstance(item, Rejection):
            rejections.append(item)
        elif not_after is not None and item.ts > not_after:  # type: ignore[operator]
            rejections.append(_future(i, item.ts))  # type: ignore[arg-type]
        else:
            events.append(item)
    return events, rejections


# ----------------------------------------------------------------------------- request bodies

_CHUNK: Final = 1 << 20  # NDJSON is decoded a megabyte of lines per call
_CACHED_LINE: Final = 256  # invalid lines up to this long are judged once per body
_CACHE_MAX: Final = 65_536


@dataclass(slots=True)
class Decoded:
    """A request body decoded: its events with their positions, and bounded rejections.

    ``rejections`` lists the first ``listed`` rejections in body order;
    ``rejected_by_reason`` counts every one.
    """

    listed: int = LISTED_REJECTIONS
    not_after: float | None = None
    events: list[Event] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # index in the body of each event
    rejections: list[Rejection] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        """Every rejected item, listed or not."""
        return sum(self.rejected_by_reason.values())

    def reject(self, index: int, reason: str, field: str | None, message: str) -> None:
        """Count one rejection; keep its details while fewer than ``listed`` are kept."""
        counts = self.rejected_by_reason
        counts[reason] = counts.get(reason, 0) + 1
        if len(self.rejections) < self.listed:
            self.rejections.append(Rejection(index, reason, field, message))

    def add(self, index: int, event: Event) -> None:
        """Keep a valid event, or reject it when it is later than ``not_after``."""
        ts: float = event.ts  # type: ignore[assignment]
        if self.not_after is not None and ts > self.not_after:
            future = _future(index, ts)
            self.reject(index, future.reason, future.field, future.message)
            return
        self.events.append(event)
        self.positions.append(index)


def decode_request(
    body: bytes, *, not_after: float | None = None, listed: int = LISTED_REJECTIONS
) -> Decoded:
    """Decode a request body like :func:`decode_body`, with work and answer bounded.

    The same events and rejection reasons as :func:`decode_body`; only the first
    ``listed`` rejections carry details, and invalid lines that repeat are judged
    once, so a body of millions of bad lines costs a pass over its lines, not a
    message per line.
    """
    out = Decoded(listed=listed, not_after=not_after)
    text = _text(body)
    if not text:
        return out
    if text[:1] == b"[":
        _decode_array(text, out)
        return out
    if text[:1] == b"{" and b"\n" in text:
        try:
            _ANY.decode(text)
        except (msgspec.DecodeError, RecursionError):
            pass  # NDJSON (or broken): each line on its own
        else:
            text = text.replace(b"\n", b" ")  # one object spread over several lines
    _decode_lines(text, out)
    return out


def _decode_array(text: bytes, out: Decoded) -> None:
    try:
        events = _EVENTS.decode(text)
    except (msgspec.DecodeError, RecursionError):
        pass
    else:
        for i, event in enumerate(events):
            out.add(i, event)
        return
    try:
        raws: list[bytes] = [bytes(raw) for raw in _RAW_LIST.decode(text)]
    except RecursionError:
        raws = split_array(text)
    except msgspec.DecodeError as exc:
        out.reject(0, *_describe(exc))
        return
    for i, raw in enumerate(raws):
        try:
            event = _EVENT.decode(raw)
        except (msgspec.DecodeError, RecursionError) as exc:
            out.reject(i, *_describe(exc))
        else:
            out.add(i, event)


def _decode_lines(text: bytes, out: Decoded) -> None:
    cache: dict[bytes, tuple[str, str | None, str]] = {}
    size = len(text)
    pos = 0
    first = 0  # line number of the chunk's first line
    while pos < size:
        cut = text.find(b"\n", pos + _CHUNK)
        end = size if cut == -1 else cut + 1
        chunk = text[pos:end]
        lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        try:
            fast: list[Event] | None = _EVENT.decode_lines(chunk)
        except (msgspec.DecodeError, RecursionError):
            fast = None
        # One value per line (see has_blank_line): positions are known.
        if fast is not None and len(fast) == lines and not has_blank_line(chunk):
            for offset, event in enumerate(fast):
                out.add(first + offset, event)
        else:
            _decode_slow(chunk.split(b"\n")[:lines], first, out, cache)
        first += lines
        pos = end


def _decode_slow(
    lines: list[bytes], first: int, out: Decoded, cache: dict[bytes, tuple[str, str | None, str]]
) -> None:
    """Lines of a chunk that did not decode whole: each distinct line is judged once.

    Hostile bodies repeat themselves (8 million copies of one bad line): counting
    equal lines and walking the chunk with set lookups keeps the work per line in C.
    """
    counts = Counter(lines)
    good: dict[bytes, Event] = {}
    bad: dict[bytes, tuple[str, str | None, str]] = {}
    for raw in counts:
        line = raw.strip()
        if not line:
            continue
        known = cache.get(line)
        if known is not None:
            bad[raw] = known
            continue
        try:
            good[raw] = _EVENT.decode(line)
        except (msgspec.DecodeError, RecursionError) as exc:
            described = bad[raw] = _describe(exc)
            if len(line) <= _CACHED_LINE and len(cache) < _CACHE_MAX:
                cache[line] = described
    if bad:
        by_reason = out.rejected_by_reason
        for raw, (reason, _, _) in bad.items():
            by_reason[reason] = by_reason.get(reason, 0) + counts[raw]
        room = out.listed - len(out.rejections)
        if room > 0:
            listed = out.rejections
            for offset, raw in enumerate(lines):
                found = bad.get(raw)
                if found is not None:
                    listed.append(Rejection(first + offset, *found))
                    room -= 1
                    if not room:
                        break
    if good:
        for offset in [i for i, raw in enumerate(lines) if raw in good]:
            out.add(first + offset, good[lines[offset]])

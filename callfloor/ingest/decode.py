"""Bodies and lines to canonical events, rejecting bad events one by one.

A body may carry one JSON object, a JSON array of objects, or NDJSON (SPEC §1).
Each invalid event becomes a :class:`Rejection` whose message names the field and
whose ``reason`` is a short, low-cardinality code for counters; the valid events of
the same body are still returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
)

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
    except msgspec.DecodeError:
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


def reject(raw: bytes, index: int, exc: Exception) -> Rejection:
    """Describe why ``raw`` is not a valid event."""
    message = str(exc)
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return Rejection(index, "invalid_json", None, f"not valid JSON: {message}", None)
    reason, field = _classify(message)
    if reason == "missing_field":
        text = f"missing required field `{field}`"
    elif field is not None and "`" not in message[:1]:
        text = f"`{field}`: {message.split(' - at ')[0]}"
    else:
        text = message
    return Rejection(index, reason, field, text, _loose_ts(raw))


def decode_line(line: bytes, index: int = 0) -> Event | Rejection:
    """One NDJSON line (or one object body) to an event or a rejection."""
    try:
        event: Event = _EVENT.decode(line)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        return reject(line, index, exc)
    return event


def _items(text: bytes) -> list[tuple[int, Event | Rejection]]:
    """(position, event or rejection) for a body of one object, an array, or NDJSON."""
    if text[:1] == b"[":
        try:
            return list(enumerate(_EVENTS.decode(text)))
        except msgspec.DecodeError:
            pass
        try:
            raws = _RAW_LIST.decode(text)
        except msgspec.DecodeError as exc:
            return [(0, reject(text, 0, exc))]
        return [(i, decode_line(bytes(raw), i)) for i, raw in enumerate(raws)]
    lines = text.split(b"\n")
    if len(lines) > 1:
        try:
            _ANY.decode(text)
        except msgspec.DecodeError:
            pass  # NDJSON (or broken): each line on its own
        else:
            lines = [text]  # one object spread over several lines
    return [(i, decode_line(line.strip(), i)) for i, line in enumerate(lines) if line.strip()]


def decode_body(body: bytes, not_after: float | None = None) -> tuple[list[Event], list[Rejection]]:
    """Decode a body that holds one object, a JSON array of objects, or NDJSON.

    With ``not_after``, an event whose ``ts`` is later is rejected as ``ts_in_future``:
    a producer whose clock runs far ahead would otherwise drag every window forward.
    """
    text = body.strip()
    if not text:
        return [], []
    events: list[Event] = []
    rejections: list[Rejection] = []
    for i, item in _items(text):
        if isinstance(item, Rejection):
            rejections.append(item)
        elif not_after is not None and item.ts > not_after:  # type: ignore[operator]
            rejections.append(
                Rejection(
                    i,
                    "ts_in_future",
                    "ts",
                    f"`ts`: {item.ts} is more than the allowed skew ahead of the server clock",
                    item.ts,  # type: ignore[arg-type]
                )
            )
        else:
            events.append(item)
    return events, rejections

"""MQTT messages to events, and dead letters: pure functions, no I/O.

A message's payload is one event, a JSON array of events, or NDJSON (SPEC §1), the
same forms and the same rejection reasons as an HTTP body
(:mod:`callfloor.ingest.decode`). One rule is MQTT's own: the level of the topic
that the first ``+`` of the matching subscription stands for is the site of every
event that names none (``callfloor/+/events`` and ``callfloor/sh/events``: site
``sh``). An event that names a site keeps it, ``"default"`` included: ``site`` is
set only where the object has none. A payload that cannot name a site (no ``"site"``
and no ``\\u`` escape in it) goes straight to events; one that may is first probed
for which objects name a site (a decode that skips every other field), then decoded
to events. A payload whose items are not all JSON objects is read as generic JSON
values, ``site`` set where missing, and converted to events one by one (the same
events and reasons, a few times slower).

A message that cannot be taken at all (over ``[limits] max_body``, more items than
``[limits] max_request_events``, empty) or that holds no valid event is
dead-lettered as a whole; a message with some valid events gives them to the floor and
dead-letters a list of its invalid items. :func:`dead_letter` builds the JSON
envelope published on ``callfloor/<site>/deadletter``, bounded whatever was sent (a
prefix of ``[limits] dead_letter_max`` bytes, the payload's size and SHA-256): a 48 MB
message once gave a letter the client refused, and the message came back for ever.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from callfloor.events import Event
from callfloor.ingest.decode import (
    BOM,
    MESSAGE_MAX,
    _describe,
    decode_request,
    split_array,
)

_ANY: Final = msgspec.json.Decoder()
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_ENCODE: Final = msgspec.json.Encoder()

TOO_LARGE: Final = "message_too_large"
TOO_MANY: Final = "too_many_events"
EMPTY: Final = "empty_message"
SITE_CACHE_MAX: Final = (
    10_000  # topics remembered by a SiteRule (a hostile publisher may vary them)
)


# ----------------------------------------------------------------------------- topics


def _levels(topic_filter: str) -> list[str]:
    """A filter's levels, without a shared-subscription prefix (``$share/<group>/``)."""
    levels = topic_filter.split("/")
    if levels[0] == "$share" and len(levels) > 2:
        return levels[2:]
    return levels


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (``+`` one level, ``#`` the rest)."""
    want = _levels(topic_filter)
    have = topic.split("/")
    if have[0].startswith("$") and want[0] in ("+", "#"):
        return False  # wildcards never match $SYS-style topics (MQTT 4.7.2)
    for i, part in enumerate(want):
        if part == "#":
            return True
        if i >= len(have) or (part != "+" and part != have[i]):
            return False
    return len(want) == len(have)


def site_of(topic_filter: str, topic: str) -> str | None:
    """The topic level the filter's first ``+`` matched, or None (no ``+``, empty level)."""
    want = _levels(topic_filter)
    if "+" not in want:
        return None
    level = topic.split("/")[want.index("+")]
    return level or None


class SiteRule:
    """The site a topic gives its events: the first configured filter with a ``+``
    that matches it decides (remembered per topic, up to :data:`SITE_CACHE_MAX`)."""

    def __init__(self, filters: Sequence[str]) -> None:
        self.filters = tuple(filters)
        self._known: dict[str, str | None] = {}

    def __call__(self, topic: str) -> str | None:
        known = self._known
        if topic in known:
            return known[topic]
        site = None
        for topic_filter in self.filters:
            if "+" in _levels(topic_filter) and matches(topic_filter, topic):
                site = site_of(topic_filter, topic)
                break
        if len(known) < SITE_CACHE_MAX:
            known[topic] = site
        return site


def deadletter_topic(site: str | None) -> str:
    """Where the dead letters of a message from this site go (SPEC §9)."""
    return f"callfloor/{site or 'default'}/deadletter"


# ----------------------------------------------------------------------------- payloads


@dataclass(frozen=True, slots=True)
class ItemRejection:
    """One invalid item of a message: where, why, and the item as it was sent."""

    index: int
    reason: str
    field: str | None
    message: str
    item: bytes


@dataclass(slots=True)
class Message:
    """One message decoded: its valid events, its invalid items, or why it was not taken."""

    events: list[Event] = field(default_factory=list)
    rejections: list[ItemRejection] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    failure: str | None = None  # the whole message was not taken: TOO_LARGE, TOO_MANY, EMPTY
    failure_message: str = ""

    @property
    def dead(self) -> bool:
        """Nothing of the message goes to the floor: it is dead-lettered whole."""
        return self.failure is not None or not self.events

    def reject(self, index: int, described: tuple[str, str | None, str], item: bytes) -> None:
        """Keep one invalid item and count it by reason."""
        reason, fld, text = described
        self.rejections.append(ItemRejection(index, reason, fld, text, item))
        counts = self.rejected_by_reason
        counts[reason] = counts.get(reason, 0) + 1


def _text(payload: bytes) -> bytes:
    text = payload.strip()
    if text.startswith(BOM):
        text = text[len(BOM) :].strip()
    return text


def _one_object(text: bytes) -> bool:
    """A ``{``-text over several lines that is one JSON value (not NDJSON)."""
    if text[:1] != b"{" or b"\n" not in text:
        return False
    try:
        _ANY.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def _raw_items(text: bytes) -> list[bytes]:
    """The items of a payload as sent, indexed like the decoder's rejections."""
    if text[:1] == b"[":
        try:
            return [bytes(raw) for raw in _RAW_LIST.decode(text)]
        except RecursionError:
            return split_array(text)
        except msgspec.DecodeError:
            return [text]
    if _one_object(text):
        return [text]
    return text.split(b"\n")


def _future(ts: float) -> tuple[str, str | None, str]:
    return (
        "ts_in_future",
        "ts",
        f"`ts`: {ts} is more than the allowed skew ahead of the server clock",
    )


def decode_message(
    payload: bytes,
    site: str | None = None,
    *,
    max_bytes: int,
    max_events: int,
    not_after: float | None = None,
) -> Message:
    """Decode one message's payload (see the module docstring for the rules)."""
    out = Message()
    if len(payload) > max_bytes:
        out.failure = TOO_LARGE
        out.failure_message = (
            f"message of {len(payload)} bytes, more than {max_bytes} ([limits] max_body)"
        )
        return out
    text = _text(payload)
    if not text:
        out.failure = EMPTY
        out.failure_message = "empty message: send a JSON event, a JSON array or NDJSON"
        return out
    if site is None or (b'"site"' not in text and b"\\u" not in text):
        _fast(text, site, out, max_events, not_after)
    else:
        unnamed = _unnamed(text)
        if unnamed is not None:
            _fast(text, site, out, max_events, not_after, unnamed)
        else:
            _with_site(text, site, out, not_after)
    items = len(out.events) + sum(out.rejected_by_reason.values())
    if items > max_events:
        out.events.clear()
        out.rejections.clear()
        out.rejected_by_reason.clear()
        out.failure = TOO_MANY
        out.failure_message = (
            f"{items} items in one message, more than {max_events} ([limits] max_request_events)"
        )
    return out


class _SiteProbe(msgspec.Struct):
    """Whether an object names a site (every other field is skipped unread)."""

    site: Any = msgspec.UNSET


_PROBE: Final = msgspec.json.Decoder(_SiteProbe)
_PROBES: Final = msgspec.json.Decoder(list[_SiteProbe])


def _unnamed(text: bytes) -> list[bool] | None:
    """For each item position: the object names no site. None if an item is not an object."""
    unset = msgspec.UNSET
    try:
        if text[:1] == b"[":
            return [probe.site is unset for probe in _PROBES.decode(text)]
        if _one_object(text):
            return [_PROBE.decode(text).site is unset]
        decode = _PROBE.decode
        return [not line.strip() or decode(line).site is unset for line in text.split(b"\n")]
    except (msgspec.DecodeError, RecursionError):
        return None


def _fast(
    text: bytes,
    site: str | None,
    out: Message,
    max_events: int,
    not_after: float | None,
    unnamed: list[bool] | None = None,
) -> None:
    """Decode straight to events, then stamp the topic's site on those that name none
    (all of them without ``unnamed``)."""
    decoded = decode_request(text, not_after=not_after, listed=max_events + 1)
    events = decoded.events
    if site is not None:
        if unnamed is None:
            for event in events:
                event.site = site
        else:
            for event, pos in zip(events, decoded.positions, strict=True):
                if unnamed[pos]:
                    event.site = site
    out.events = events
    if decoded.rejections:
        raws = _raw_items(text)
        for r in decoded.rejections:
            item = raws[r.index] if r.index < len(raws) else b""
            out.reject(r.index, (r.reason, r.field, r.message), item.strip())
        out.rejections.sort(key=lambda r: r.index)  # invalid lines are listed before late ones
    out.rejected_by_reason = dict(decoded.rejected_by_reason)


def _values(text: bytes, out: Message) -> list[tuple[int, object, bytes | None]]:
    """(index, JSON value, raw item if known) of each item that is valid JSON."""
    if text[:1] == b"[":
        try:
            whole = _ANY.decode(text)
        except RecursionError:
            raws = split_array(text)
        except msgspec.DecodeError as exc:
            out.reject(0, _describe(exc), text)
            return []
        else:
            assert isinstance(whole, list)
            return [(i, value, None) for i, value in enumerate(whole)]
    elif _one_object(text):
        raws = [text]
    else:
        raws = text.split(b"\n")
    values: list[tuple[int, object, bytes | None]] = []
    for i, raw in enumerate(raws):
        line = raw.strip()
        if not line and len(raws) > 1 and text[:1] != b"[":
            continue  # a blank line of NDJSON
        try:
            values.append((i, _ANY.decode(line), line))
        except (msgspec.DecodeError, RecursionError) as exc:
            out.reject(i, _describe(exc), line)
    return values


def _with_site(text: bytes, site: str, out: Message, not_after: float | None) -> None:
    """JSON values first; ``site`` set where an object names none; then events."""
    for index, value, raw in _values(text, out):
        if isinstance(value, dict) and "site" not in value:
            value["site"] = site
        try:
            event: Event = msgspec.convert(value, Event)
        except msgspec.ValidationError as exc:
            out.reject(index, _describe(exc), raw if raw is not None else _ENCODE.encode(value))
            continue
        ts: float = event.ts  # type: ignore[assignment]
        if not_after is not None and ts > not_after:
            out.reject(index, _future(ts), raw if raw is not None else _ENCODE.encode(value))
            continue
        out.events.append(event)


# ----------------------------------------------------------------------------- dead letters

KEEP_DEFAULT: Final = 4096  # [limits] dead_letter_max's default
LETTER_ITEMS: Final = 100  # invalid items a dead letter lists (the rest are counted)
_LETTER_BOUND: Final = 64 * 1024  # the bound of a letter when none is given


class DeadLetterItem(msgspec.Struct, omit_defaults=True):
    """One invalid item in a dead letter."""

    index: int
    reason: str
    message: str
    field: str | None = None
    item: str | None = None  # the item as sent, or its first bytes (see item_truncated)
    item_base64: str | None = None  # the same when it is not UTF-8 text
    item_size: int | None = None  # the item's size in bytes when it was cut
    item_truncated: bool = False


class DeadLetter(msgspec.Struct, omit_defaults=True):
    """What is published on ``callfloor/<site>/deadletter`` (JSON).

    Bounded whatever was sent: the payload (or each invalid item) is kept up to
    ``[limits] dead_letter_max`` bytes in all, with the payload's full size and SHA-256,
    and at most :data:`LETTER_ITEMS` items are listed.
    """

    source: str
    topic: str
    reason: str
    message: str
    received_at: float
    accepted: int  # events of the same message that went to the floor
    rejected_total: int
    rejected: list[DeadLetterItem]
    payload: str | None = None  # the message (UTF-8 text) when nothing was taken
    payload_base64: str | None = None  # the same when it is not UTF-8 text
    payload_size: int | None = None  # bytes of the whole payload
    payload_sha256: str | None = None  # of the whole payload (hex)
    payload_truncated: bool = False  # payload holds only its first bytes


def _text_of(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _kept(data: bytes, keep: int) -> tuple[str | None, str | None, bool]:
    """(text, base64, cut) of at most ``keep`` bytes of ``data``.

    UTF-8 text stays text, cut at a character boundary, unless JSON would escape it to
    more than base64 takes (control bytes: ``\\u0001`` is six); anything else is base64.
    """
    prefix = data[:keep]
    cut = len(prefix) < len(data)
    try:
        text = prefix.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut in two at the end of the prefix is no reason for base64.
        text = None
        if cut and exc.start >= len(prefix) - 3 and exc.reason == "unexpected end of data":
            try:
                text = prefix[: exc.start].decode("utf-8")
            except UnicodeDecodeError:
                text = None
    if text is not None and len(_ENCODE.encode(text)) <= 4 * len(prefix) // 3 + 8:
        return text, None, cut
    return None, base64.b64encode(prefix).decode("ascii"), cut


def _item(r: DeadLetterItem, raw: bytes, budget: int) -> int:
    """Put (a prefix of) ``raw`` in the item within ``budget`` bytes; what is left."""
    if budget <= 0:
        r.item_size = len(raw)
        r.item_truncated = True
        return budget
    text, b64, cut = _kept(raw, budget)
    r.item, r.item_base64 = text, b64
    if cut:
        r.item_size = len(raw)
        r.item_truncated = True
    return budget - min(len(raw), budget)


def _bounded(letter: DeadLetter, bound: int) -> bytes:
    """The letter encoded; if it is still over ``bound`` (a huge topic, a tiny max_body),
    the same letter without any kept bytes and with ten items at most."""
    encoded = _ENCODE.encode(letter)
    if len(encoded) <= bound:
        return encoded
    letter.payload = letter.payload_base64 = None
    letter.payload_truncated = letter.payload_size is not None
    letter.rejected = letter.rejected[:10]
    for r in letter.rejected:
        if r.item is not None or r.item_base64 is not None:
            r.item = r.item_base64 = None
            r.item_truncated = True
    letter.topic = letter.topic[:1024]
    return _ENCODE.encode(letter)


def dead_letter(
    decoded: Message,
    payload: bytes,
    *,
    source: str,
    topic: str,
    received_at: float,
    keep: int = KEEP_DEFAULT,
    bound: int | None = None,
) -> bytes:
    """The dead letter of a message that was not taken whole or had invalid items.

    It keeps at most ``keep`` bytes of the payload (a whole dead message) or of its
    invalid items together, and always the payload's size and SHA-256; the encoded
    letter stays under ``bound`` (``[limits] max_body``, which the broker's
    ``message_size_limit`` should match), so the broker and the client always take it.
    """
    whole = decoded.dead
    listed = decoded.rejections[:LETTER_ITEMS]
    items = [DeadLetterItem(r.index, r.reason, r.message[:MESSAGE_MAX], r.field) for r in listed]
    if not whole:
        budget = keep
        for r, out in zip(listed, items, strict=True):
            budget = _item(out, r.item, budget)
    if decoded.failure is not None:
        reason, message = decoded.failure, decoded.failure_message
    elif decoded.rejections:
        first = decoded.rejections[0]
        reason = first.reason
        n = len(decoded.rejections)
        message = first.message if n == 1 else f"{n} invalid items"
    else:  # pragma: no cover - a message with events and no rejection has no dead letter
        reason, message = "none", ""
    letter = DeadLetter(
        source=source,
        topic=topic,
        reason=reason,
        message=message[:MESSAGE_MAX],
        received_at=received_at,
        accepted=0 if whole else len(decoded.events),
        rejected_total=max(len(decoded.rejections), sum(decoded.rejected_by_reason.values())),
        rejected=items,
    )
    if whole:
        letter.payload, letter.payload_base64, letter.payload_truncated = _kept(payload, keep)
        letter.payload_size = len(payload)
        letter.payload_sha256 = hashlib.sha256(payload).hexdigest()
    return _bounded(letter, _LETTER_BOUND if bound is None else bound)


def refused_letter(
    refused: Sequence[tuple[int, str, str | None, str, Event]],
    *,
    source: str,
    topic: str,
    received_at: float,
    accepted: int,
    keep: int = KEEP_DEFAULT,
    bound: int | None = None,
) -> bytes:
    """The dead letter of events the floor refused (a limit: ``ts_too_old``, ...).

    ``refused`` holds (index in the message, reason, field, message, event); the first
    :data:`LETTER_ITEMS` are listed, their events kept up to ``keep`` bytes in all.
    """
    items: list[DeadLetterItem] = []
    budget = keep
    for i, reason, fld, text, event in refused[:LETTER_ITEMS]:
        item = DeadLetterItem(i, reason, text[:MESSAGE_MAX], fld or None)
        budget = _item(item, _ENCODE.encode(event), budget)
        items.append(item)
    first = items[0]
    letter = DeadLetter(
        source=source,
        topic=topic,
        reason=first.reason,
        message=first.message if len(refused) == 1 else f"{len(refused)} events refused",
        received_at=received_at,
        accepted=accepted,
        rejected_total=len(refused),
        rejected=items,
    )
    return _bounded(letter, _LETTER_BOUND if bound is None else bound)

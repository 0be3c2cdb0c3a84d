"""Checkpoints: the whole processor state in a versioned, checksummed envelope of sections.

Format 3, byte by byte::

    MAGIC (21 bytes) | format version (2 bytes, big-endian) | SHA-256 (32 bytes) | body

The digest covers the version bytes and the body (the magic is compared as it is), so a
checkpoint changed after it was written (a flipped bit on disk or in Redis, a partial
copy) is refused before anything of it is decoded (:class:`CheckpointError`, reason
``checksum``): never restored into a silently different floor. The store then falls
back to the previous checkpoint it keeps and the longer log (see
:mod:`callfloor.service.writer`). SHA-256 rather than a CRC: any change is found, not
only bursts of up to 32 bits, at 0.8 ms per MB here (hardware-accelerated on x86 and
ARM servers; BLAKE2b measured 1.6x slower on this machine), and operators can check a
body with standard tools.

The body is one MessagePack :class:`~callfloor.processors.schema.Envelope`:

- ``callfloor_version``; ``config_fingerprint``, a hash of the configuration it was
  taken under; ``tzdata_version``, the time-zone data in use. Restoring under another
  configuration is allowed (a supervisor changes a threshold and restarts): a queue
  whose policy changed counts legs that arrive from now on with the new policy, while a
  late event re-derives earlier legs with the policy they were counted with; its wait
  histogram restarts (Prometheus sees a counter reset), since waits counted under other
  bounds cannot be re-bucketed. A different tzdata version is reported (site-local days
  and intervals of past data may shift), not refused.
- ``sections``: section name -> that section's MessagePack. A section is registered by
  name with the type it decodes as (:func:`register_section`): the core ones are
  ``floor`` (the processor state, :class:`FloorState`), ``log_positions`` (the store
  log's position per stream the state covers: an opaque string, a segment offset or a
  stream id) and ``held`` (events received but not yet applied: ahead of the live
  watermark). A feature keeps its own state as a section of its own, registered in its
  module, not as an edit to the envelope. A section the reader knows and the checkpoint
  lacks (written before the feature existed) reads as its empty value; a section the
  reader does not know (written by a newer callfloor) is reported in the notes and kept
  as bytes (:attr:`Restored.unknown`), never an error.

A checkpoint of another format is migrated when a migration exists (:data:`MIGRATIONS`:
format 2, the landed release's single Struct without a checksum, becomes format 3), else
refused with a message that says what to do; never half-read. Derived indexes (agent
counts per queue list and site, queues' waiting legs, the interned strings) are rebuilt
on load rather than stored.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import zoneinfo
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar, cast

import msgspec

from callfloor import __version__
from callfloor.config import Config, QueuePolicy
from callfloor.events import Event
from callfloor.processors.agents import EMPTY_BASE, AgentFold, AgentTrack, CallEnd, Payload
from callfloor.processors.calls import CallTrack, Conversation, Leg
from callfloor.processors.deltalog import DeltaLog, MaxLog
from callfloor.processors.engine import _TAG, FloorProcessor
from callfloor.processors.queues import QueueState, wait_bounds
from callfloor.processors.schema import (
    AgentS,
    CallEndS,
    ConversationS,
    Envelope,
    FloorState,
    FoldS,
    LegS,
    NRDayS,
    OpenCallS,
    PolicyS,
    QueueS,
    TrackerS,
    ViolationS,
    WindowsS,
)
from callfloor.processors.timers import T_SHIFT
from callfloor.processors.violations import NRDay, Violation
from callfloor.processors.windows import NFIELDS, QueueWindows, _Day

FORMAT_VERSION: Final = 3
# A checkpoint starts with these bytes, the format version (2 bytes, big-endian) and,
# from format 3, the SHA-256 of the version bytes and the body: its version is known,
# and its integrity checked, without parsing the rest.
MAGIC: Final = b"callfloor-checkpoint\x00"
DIGEST_SIZE: Final = 32
_VERSION_AT: Final = len(MAGIC)
_DIGEST_AT: Final = _VERSION_AT + 2
HEADER_SIZE: Final = _DIGEST_AT + DIGEST_SIZE

T = TypeVar("T")


CHECKPOINT_PROBLEMS: Final = ("checksum", "format", "damaged")  # CheckpointError.reason


class CheckpointError(ValueError):
    """A checkpoint that cannot be restored; the message says why and what to do.

    ``reason`` says which kind of problem (a metric label): ``checksum`` (its bytes
    changed after it was written), ``format`` (a format this version can neither read
    nor migrate) or ``damaged`` (anything else: not a checkpoint, cut short, a section
    that does not decode).
    """

    def __init__(self, message: str, reason: str = "damaged") -> None:
        super().__init__(message)
        self.reason = reason


# ----------------------------------------------------------------------------- sections


@dataclass(frozen=True, slots=True, eq=False)
class Section(Generic[T]):
    """A named part of every checkpoint (see :func:`register_section`)."""

    name: str
    kind: Any  # what the section decodes as: a Struct, dict[str, str], list[Event], ...
    empty: Callable[[], T]  # its value in a checkpoint written without it
    decoder: msgspec.msgpack.Decoder[Any] = field(repr=False)

    def decode(self, data: bytes | memoryview | msgspec.Raw) -> T:
        """The section's value from its MessagePack (msgspec.DecodeError if it is not)."""
        value: T = self.decoder.decode(data)
        return value


SECTIONS: Final[dict[str, Section[Any]]] = {}
"""Every registered section, by name."""


def register_section(name: str, kind: Any, empty: Callable[[], T]) -> Section[T]:
    """Make ``name`` a section of the checkpoint envelope; the one line a feature adds.

    ``kind`` is the type the section's value encodes from and decodes as (anything
    msgspec handles: a Struct of the feature's own, ``dict[str, str]``); ``empty()``
    stands in for it when a checkpoint has none (written before the feature existed).
    The feature passes its value to :func:`encode_checkpoint` (``sections={name:
    value}``) and reads it back with :meth:`Restored.section`; a name is registered once.
    """
    if not name or name in SECTIONS:
        raise ValueError(f"checkpoint section {name!r} is empty or registered already")
    section: Section[T] = Section(name, kind, empty, msgspec.msgpack.Decoder(kind))
    SECTIONS[name] = section
    return section


def _no_floor() -> FloorState:
    raise CheckpointError("damaged checkpoint: it has no floor section")


FLOOR: Final[Section[FloorState]] = register_section("floor", FloorState, _no_floor)
LOG_POSITIONS: Final[Section[dict[str, str]]] = register_section(
    "log_positions", dict[str, str], dict
)
HELD: Final[Section[list[Event]]] = register_section("held", list[Event], list)
_CORE: Final = frozenset((FLOOR.name, LOG_POSITIONS.name, HELD.name))


@dataclass(frozen=True, slots=True)
class Restored:
    """A restored processor, the log positions and held events it came with."""

    processor: FloorProcessor
    log_positions: dict[str, str]  # the store log's position per stream it covers
    held: list[Event]
    notes: list[str]  # what differs from when it was taken (configuration, tzdata)
    # Every registered section but the floor, decoded (its empty value where absent).
    sections: dict[str, Any] = field(default_factory=dict)
    # Sections this callfloor does not know (a newer one wrote them), as encoded.
    unknown: dict[str, bytes] = field(default_factory=dict)

    def section(self, section: Section[T]) -> T:
        """The value of a registered section (its empty value if the checkpoint has none)."""
        if section.name in self.sections:
            return cast("T", self.sections[section.name])
        return section.empty()


def _from_format_2(doc: dict[str, Any]) -> dict[str, Any]:
    """Format 2 (one Struct: the floor, source positions and held events as fields, no
    checksum) as format 3's envelope: its parts become the core sections."""
    return {
        "format_version": 3,
        "callfloor_version": doc["callfloor_version"],
        "config_fingerprint": doc["config_fingerprint"],
        "tzdata_version": doc["tzdata_version"],
        "sections": {
            FLOOR.name: doc["floor"],
            LOG_POSITIONS.name: doc["sources"],
            HELD.name: doc["held"],
        },
    }


# Older format versions this one can read, each as a function from the older document
# (plain data, after the older header) to the next version's. Version 1 (callfloor
# 0.1's untyped dump, written by nothing in production) has none: it is refused.
MIGRATIONS: Final[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {2: _from_format_2}


# ----------------------------------------------------------------------------- helpers


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage-collector pass while a checkpoint builds or reads millions of small
    objects: each pass would scan the whole (large, long-lived) processor heap, which
    made encoding 10x slower. Reference counting frees what is dropped anyway."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def tzdata_version() -> str:
    """The version of the IANA time-zone data ``zoneinfo`` reads."""
    for root in zoneinfo.TZPATH:
        zi = Path(root) / "tzdata.zi"
        try:
            with open(zi, encoding="utf-8") as fh:
                first = fh.readline().strip()
        except OSError:
            continue
        if first.startswith("# version "):
            return first.removeprefix("# version ")
    try:
        return "tzdata " + importlib.metadata.version("tzdata")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def config_fingerprint(config: Config) -> str:
    """A stable hash of everything in the configuration that changes numbers."""
    data = {
        "sites": {n: msgspec.structs.asdict(_plain(s)) for n, s in sorted(config.sites.items())},
        "defaults": {c: _policy_s(p) for c, p in sorted(config.channel_defaults.items())},
        "queues": {
            n: [q.site, q.channel, _policy_s(q.policy)] for n, q in sorted(config.queues.items())
        },
        "windows": [list(w) for w in config.rolling_windows],
        "agents": _canonical(config.agents),
        "limits": _canonical(config.limits),
    }
    return hashlib.sha256(msgspec.json.encode(data)).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    """``value`` as plain JSON data whose encoding is the same in every process.

    ``repr`` of a set depends on string hashing, which Python randomises per process:
    a fingerprint built from it differed between two processes with one configuration.
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, Mapping):
        return sorted(([str(k), _canonical(v)] for k, v in value.items()), key=repr)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


class _SiteS(msgspec.Struct):
    name: str
    timezone: str
    interval_minutes: int
    sl_formula: str


def _plain(site: Any) -> _SiteS:
    return _SiteS(site.name, site.timezone, site.interval_minutes, site.sl_formula)


def _policy_s(p: QueuePolicy) -> PolicyS:
    return PolicyS(p.sl_threshold_s, p.sl_target, p.short_abandon_s, p.sl_formula, p.default_aht_s)


def _policy(p: PolicyS) -> QueuePolicy:
    return QueuePolicy(
        p.sl_threshold_s, p.sl_target, p.short_abandon_s, p.sl_formula, p.default_aht_s
    )


def _violations(items: Sequence[Violation]) -> list[ViolationS]:
    return [ViolationS(v.kind, v.severity, v.started_at, v.ended_at, v.value) for v in items]


def _unviolations(items: Sequence[ViolationS]) -> list[Violation]:
    return [Violation(v.kind, v.severity, v.started_at, v.ended_at, v.value) for v in items]


def _fold_s(f: AgentFold) -> FoldS:
    return FoldS(
        f.known,
        f.state,
        f.reason,
        f.since,
        f.last_ts,
        f.site,
        f.group,
        f.team,
        f.display,
        _violations(f.closed),
        [NRDayS(d.start, d.end, d.closed_s, list(d.crossings)) for d in f.nr_days],
    )


def _fold(s: FoldS, intern: Callable[[list[str]], tuple[str, ...]]) -> AgentFold:
    f = AgentFold(s.site)
    f.known = s.known
    f.state = s.state
    f.reason = s.reason
    f.since = s.since
    f.last_ts = s.last_ts
    f.group = intern(list(s.group)) if s.group else ()
    f.team = s.team
    f.display = s.display
    f.closed = _unviolations(s.closed)
    days = []
    for d in s.nr_days:
        day = NRDay(d.start, d.end)
        day.closed_s = d.closed_s
        day.crossings = list(d.crossings)
        days.append(day)
    f.nr_days = days
    return f


def _doubles(values: array[float]) -> bytes:
    return values.tobytes()


def _undoubles(data: bytes) -> array[float]:
    out = array("d")
    out.frombytes(data)
    return out


# ----------------------------------------------------------------------------- dump


def windows_s(w: QueueWindows) -> WindowsS:
    """A queue's windows in their checkpoint form: records as attribution times and
    cumulative vectors, ``maxq`` the waits that can still be a rolling window's maximum
    (each longer than every later one), and the wait log."""
    day = w._day
    times, cums, base = w.log.dump()
    wait_x, wait_us = w.waits.dump()
    maxq: list[tuple[float, int]] = []
    for x, v in reversed(w.waits.entries_after(w.now - w.widest)):
        if not maxq or v > maxq[-1][1]:
            maxq.append((x, v))
    maxq.reverse()
    # The lists are encoded at once, so they are shared, not copied.
    return WindowsS(
        w.now,
        times.tobytes(),
        cums.tobytes(),
        base,
        maxq,
        wait_x.tobytes(),
        wait_us.tobytes(),
        day.start,
        day.sums,
        day.max_us,
    )


def windows_from(
    ws: WindowsS, widths: tuple[float, ...], span: float | None = None
) -> QueueWindows:
    """A queue's windows from their checkpoint form (the wait log included; ``maxq`` is
    implied by it and not read)."""
    w = QueueWindows(widths, span)
    w.now = ws.now
    times = array("d")
    times.frombytes(ws.times)
    cums = array("q")
    cums.frombytes(ws.cums)
    try:
        w.log = DeltaLog.load(NFIELDS, times, cums, ws.base)
        wait_x = array("d")
        wait_x.frombytes(ws.wait_x)
        wait_us = array("q")
        wait_us.frombytes(ws.wait_us)
        w.waits = MaxLog.load(wait_x, wait_us, -1)
    except ValueError as exc:
        raise CheckpointError(f"a queue's windows do not fit together: {exc}") from None
    day = _Day(ws.day_start)
    day.sums = ws.day_sums
    day.max_us = ws.day_max_us
    w._day = day
    return w


def _queue_s(q: QueueState) -> QueueS:
    return QueueS(
        q.name,
        q.site,
        q.site_fixed,
        q.channel,
        q.configured,
        q.listed,
        _policy_s(q.policy),
        windows_s(q.windows),
        list(q.totals),
        list(q.bounds),
        list(q.hist_answered),
        list(q.hist_abandoned),
        q.answered_wait_us,
        q.abandoned_wait_us,
    )


def _open_call_s(c: CallTrack) -> OpenCallS:
    leg = c.leg
    return OpenCallS(
        None
        if leg is None
        else LegS(leg.queue, leg.start, leg.seq, leg.threshold, leg.short, leg.missed),
        [ConversationS(v.agent, v.queue, v.answered_at) for v in c.convs],
        c.early,
    )


def _agent_s(a: AgentTrack) -> AgentS:
    return AgentS(
        a.name,
        _doubles(a.ts),
        a.codes.tobytes(),
        a.payloads,
        _fold_s(a.base) if a.base.known or a.base.nr_days or a.base.closed else None,
        _fold_s(a.fold),
        _doubles(a.answers),
        _doubles(a.misses),
        [
            CallEndS(e.call_id, e.queue, e.answered_at, e.ended_at, e.done_at, e.attached)
            for e in a.ends
        ],
        _doubles(a.offers),
        _doubles(a.carried_at),
        _doubles(a.carried_from),
        _doubles(a.handled_at),
        _doubles(a.handled_s),
    )


def floor_state(proc: FloorProcessor) -> FloorState:
    """The processor's state as Structs (no copy of what Structs can share)."""
    tracker = proc.tracker
    ids = proc.ids
    return FloorState(
        clock=proc.clock,
        seq=proc.seq,
        version=proc._version,
        next_prune=proc._next_prune,
        queues=[_queue_s(q) for q in proc.queues.values()],
        call_ids=list(proc.calls),
        call_events=[c.events for c in proc.calls.values()],
        open_calls={
            cid: _open_call_s(c)
            for cid, c in proc.calls.items()
            if c.leg is not None or c.convs or c.early
        },
        agents=[_agent_s(a) for a in proc.agents.values()],
        timers=proc.timers.heap,
        ids_current=sorted(str(k) for k in ids.current),
        ids_previous=sorted(str(k) for k in ids.previous),
        ids_rotate_at=ids._rotate_at,
        counters=dict(proc.counters),
        rejected_by_reason=dict(proc.rejected_by_reason),
        events_by_type=proc.events_by_type,
        expired=dict(proc.expired),
        policy_changes={
            q: [(seq, _policy_s(p)) for seq, p in changes]
            for q, changes in proc.policy_changes.items()
        },
        tracker=TrackerS(
            published={a: _violations(list(vs.values())) for a, vs in tracker.published.items()},
            started=[(k, s, n) for (k, s), n in tracker.started.items()],
            retracted=[(k, s, n) for (k, s), n in tracker.retracted.items()],
            due=dict(tracker.due),
            dirty=sorted(tracker.dirty),
            queues=sorted(tracker.queues),
            sites=sorted(tracker.sites),
            agents=sorted(tracker.agents),
            groups=sorted(tracker.groups),
            pending=list(tracker.pending),
            placed=dict(tracker.placed),
        ),
        queue_seen=dict(proc.queue_seen),
        agent_seen=dict(proc.agent_seen),
        next_forget=proc._next_forget,
    )


_ENCODER: Final = msgspec.msgpack.Encoder()


class _EnvelopeOut(msgspec.Struct):
    """The :class:`Envelope` as it is written: each section's value encoded in place
    (no copy of the floor's bytes), read back as :class:`Envelope`'s raw sections."""

    callfloor_version: str
    config_fingerprint: str
    tzdata_version: str
    sections: dict[str, Any]


def encode_checkpoint(
    proc: FloorProcessor,
    *,
    log_positions: Mapping[str, str] | None = None,
    held: Sequence[Event] = (),
    sections: Mapping[str, object] | None = None,
) -> bytes:
    """The processor's whole state, log positions, held events and the registered
    ``sections`` given (name -> value; a section not given reads as its empty value),
    as bytes.

    Raises ValueError for a section name not registered, or a core one (the floor, log
    positions and held events have their own arguments).
    """
    with _collector_paused():
        return _encode(proc, log_positions, held, sections or {})


def _encode(
    proc: FloorProcessor,
    log_positions: Mapping[str, str] | None,
    held: Sequence[Event],
    sections: Mapping[str, object],
) -> bytes:
    parts: dict[str, Any] = {
        FLOOR.name: floor_state(proc),
        LOG_POSITIONS.name: dict(log_positions or {}),
        HELD.name: list(held),
    }
    for name, value in sections.items():
        if name in _CORE or name not in SECTIONS:
            raise ValueError(f"{name!r} is not a registered checkpoint section of a feature")
        parts[name] = value
    envelope = _EnvelopeOut(
        callfloor_version=__version__,
        config_fingerprint=config_fingerprint(proc.config),
        tzdata_version=tzdata_version(),
        sections=parts,
    )
    body = _ENCODER.encode(envelope)
    version = FORMAT_VERSION.to_bytes(2, "big")
    return b"".join((MAGIC, version, _digest(version, body), body))


def _digest(version: bytes | memoryview, body: bytes | memoryview) -> bytes:
    digest = hashlib.sha256(version)
    digest.update(body)
    return digest.digest()


# ----------------------------------------------------------------------------- load


_ENVELOPE: Final = msgspec.msgpack.Decoder(Envelope)


def decode_checkpoint(config: Config, blob: bytes, *, live: bool = False) -> Restored:
    """A processor restored from :func:`encode_checkpoint` output, under ``config``.

    Raises :class:`CheckpointError` (never a half-restored processor) when the blob is
    not a checkpoint, was changed after it was written (its checksum), or is of a format
    this version can neither read nor migrate.
    """
    with _collector_paused():
        return _decode(config, blob, live)


def _body(blob: bytes) -> tuple[int, memoryview]:
    """The format version and the body after the header, checksum verified."""
    if not blob.startswith(MAGIC) or len(blob) < _DIGEST_AT:
        raise CheckpointError(
            "not a callfloor checkpoint of format 2 or later (a format-1 dump of callfloor "
            "0.1 cannot be restored: move it aside and start without it)"
        )
    view = memoryview(blob)
    version = int.from_bytes(view[_VERSION_AT:_DIGEST_AT], "big")
    if version == FORMAT_VERSION:
        if len(blob) < HEADER_SIZE:
            raise CheckpointError(
                f"damaged checkpoint: cut short within its header ({len(blob)} bytes)",
                reason="checksum",
            )
        if (
            _digest(view[_VERSION_AT:_DIGEST_AT], view[HEADER_SIZE:])
            != view[_DIGEST_AT:HEADER_SIZE]
        ):
            raise CheckpointError(
                f"damaged checkpoint: its SHA-256 does not match its {len(blob)} bytes (they "
                "changed after it was written: a flipped bit on disk or in memory, a partial "
                "copy), so it is not restored",
                reason="checksum",
            )
        return version, view[HEADER_SIZE:]
    if version not in MIGRATIONS:
        raise CheckpointError(
            f"checkpoint format {version} cannot be read by callfloor {__version__} "
            f"(format {FORMAT_VERSION}) and there is no migration for it: start without "
            "it (move the checkpoint aside); with a durable event log the events since "
            "are replayed from there",
            reason="format",
        )
    return version, view[_DIGEST_AT:]


def _envelope(blob: bytes) -> Envelope:
    """The envelope of a checkpoint of this format, or of one migrated to it."""
    version, body = _body(blob)
    if version != FORMAT_VERSION:
        try:
            data: dict[str, Any] = msgspec.msgpack.decode(body)
            while version in MIGRATIONS:
                data = MIGRATIONS[version](data)
                version = int(data["format_version"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"damaged checkpoint (format {version}): {exc!r}") from None
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint migrated to format {version}, not {FORMAT_VERSION}", reason="format"
            )
        body = memoryview(msgspec.msgpack.encode(data))
    try:
        return _ENVELOPE.decode(body)
    except msgspec.DecodeError as exc:
        raise CheckpointError(f"damaged checkpoint (format {FORMAT_VERSION}): {exc}") from None


def _decode(config: Config, blob: bytes, live: bool) -> Restored:
    envelope = _envelope(blob)
    notes: list[str] = []
    if envelope.config_fingerprint != config_fingerprint(config):
        notes.append("the configuration changed since the checkpoint was taken")
    tz = tzdata_version()
    if envelope.tzdata_version != tz:
        notes.append(
            f"time-zone data changed ({envelope.tzdata_version} -> {tz}): site-local "
            "days of past data may shift"
        )
    values: dict[str, Any] = {}
    unknown: dict[str, bytes] = {}
    floor: FloorState | None = None
    for name, raw in envelope.sections.items():
        section = SECTIONS.get(name)
        if section is None:
            unknown[name] = bytes(raw)
            notes.append(
                f"section {name!r} is not known to callfloor {__version__} (written by "
                f"callfloor {envelope.callfloor_version}?): ignored"
            )
            continue
        try:
            value = section.decode(raw)
        except msgspec.DecodeError as exc:
            raise CheckpointError(f"damaged checkpoint: its {name!r} section: {exc}") from None
        if section is FLOOR:
            floor = value
        else:
            values[name] = value
    if floor is None:
        floor = FLOOR.empty()
    for name, section in SECTIONS.items():
        if name != FLOOR.name and name not in values:
            values[name] = section.empty()
    try:
        proc = restore_floor(config, floor, live=live, notes=notes)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, AssertionError) as exc:
        # Only a checkpoint without a checksum (format 2) or written by a broken
        # callfloor gets here: its floor decodes but does not hold together.
        raise CheckpointError(
            f"damaged checkpoint: its floor does not hold together ({exc!r})"
        ) from None
    return Restored(
        processor=proc,
        log_positions=values[LOG_POSITIONS.name],
        held=values[HELD.name],
        notes=notes,
        sections=values,
        unknown=unknown,
    )


def restore_floor(
    config: Config, s: FloorState, *, live: bool = False, notes: list[str] | None = None
) -> FloorProcessor:
    """A processor from :class:`FloorState`, under (possibly another) ``config``."""
    proc = FloorProcessor(config, live=live)
    proc.clock = s.clock
    proc.seq = s.seq
    proc._version = s.version
    proc._next_prune = s.next_prune
    proc._next_forget = s.next_forget
    proc.queue_seen = dict(s.queue_seen)
    proc.agent_seen = dict(s.agent_seen)
    notes = notes if notes is not None else []
    policy_changes = {
        q: [(seq, _policy(p)) for seq, p in changes] for q, changes in s.policy_changes.items()
    }
    for qs in s.queues:
        _restore_queue(proc, qs, policy_changes, notes)
    proc.policy_changes = policy_changes
    calls = proc.calls
    for cid, events in zip(s.call_ids, s.call_events, strict=True):
        call = CallTrack(cid)
        call.events = events
        calls[cid] = call
    for cid, cs in s.open_calls.items():
        call = calls[cid]
        if cs.leg is not None:
            leg = Leg(cs.leg.queue, cs.leg.start, cs.leg.seq, cs.leg.threshold, cs.leg.short)
            leg.missed = cs.leg.missed
            call.leg = leg
            proc.queues[leg.queue].open[cid] = leg
            proc.n_waiting += 1
        call.convs = [Conversation(c.agent, c.queue, c.answered_at) for c in cs.convs]
        call.early = cs.early
    # Every agent of a team names the same queue list: intern each list once.
    canonical: dict[tuple[str, ...], tuple[str, ...]] = {}

    def intern(group: list[str]) -> tuple[str, ...]:
        key = tuple(group)
        found = canonical.get(key)
        if found is None:
            found = canonical[key] = proc._intern_group(group)
        return found

    for a in s.agents:
        proc.agents[a.name] = _restore_agent(proc, a, intern)
    proc.timers.restore(s.timers)
    # Each rostered agent's pending shift timer (the engine fires only the listed one).
    proc.shift_timers = {e[4]: e[0] for e in s.timers if e[3] == T_SHIFT}
    proc.ids.current = set(s.ids_current)
    proc.ids.previous = set(s.ids_previous)
    proc.ids._rotate_at = s.ids_rotate_at
    c = s.counters
    proc.n_events = c.get("events", 0)
    proc.n_rejected = c.get("rejected", 0)
    proc.n_duplicates = c.get("duplicates", 0)
    proc.n_orphaned = c.get("orphaned", 0)
    proc.n_late = c.get("late", 0)
    proc.rejected_by_reason = dict(s.rejected_by_reason)
    classes = {tag: cls for cls, tag in _TAG.items()}
    proc._by_class = {classes[k]: n for k, n in s.events_by_type.items() if k in classes}
    proc.expired.update(s.expired)
    t = proc.tracker
    t.published = {
        a: {v.key(): v for v in _unviolations(vs)} for a, vs in s.tracker.published.items()
    }
    t.started = {(k, sev): n for k, sev, n in s.tracker.started}
    t.retracted = {(k, sev): n for k, sev, n in s.tracker.retracted}
    t.due = dict(s.tracker.due)
    t.watch = sorted((at, name) for name, at in t.due.items())
    t.dirty = set(s.tracker.dirty)
    t.queues = set(s.tracker.queues)
    t.sites = set(s.tracker.sites)
    t.agents = set(s.tracker.agents)
    t.groups = {proc._intern_group(list(g)) if g else () for g in s.tracker.groups}
    t.pending = list(s.tracker.pending)
    t.placed = {
        name: (proc._intern_group(list(g)) if g else (), site)
        for name, (g, site) in s.tracker.placed.items()
    }
    return proc


def _restore_queue(
    proc: FloorProcessor,
    qs: QueueS,
    policy_changes: dict[str, list[tuple[int, QueuePolicy]]],
    notes: list[str],
) -> None:
    q = proc.queues.get(qs.name)
    then = _policy(qs.policy)
    if q is None:
        # An unconfigured queue (or one no longer configured) keeps the policy it had.
        policy = then if not qs.configured else proc.config.queue_policy(qs.name, qs.channel)
        q = proc._new_queue(
            qs.name, qs.site, qs.channel, policy, configured=False, site_fixed=qs.site_fixed
        )
    elif not q.site_fixed:
        q.site = qs.site
        q.site_fixed = qs.site_fixed
        q.calendar = proc.site(qs.site).calendar
    q.listed = qs.listed or q.configured
    if q.policy != then:
        changes = policy_changes.setdefault(qs.name, [(0, then)])
        changes.append((proc.seq + 1, q.policy))
        notes.append(f"queue {qs.name!r}: policy changed; legs from now on use the new one")
    q.windows = windows_from(qs.windows, proc.widths, proc.window_span)
    q.totals = list(qs.totals)
    if tuple(qs.bounds) == wait_bounds(q.policy) and len(qs.hist_answered) == len(q.hist_answered):
        q.hist_answered = list(qs.hist_answered)
        q.hist_abandoned = list(qs.hist_abandoned)
        q.answered_wait_us = qs.answered_wait_us
        q.abandoned_wait_us = qs.abandoned_wait_us
    else:
        # Waits counted under other bounds cannot be re-bucketed: the histogram
        # restarts (a counter reset to Prometheus), with its sums.
        notes.append(f"queue {qs.name!r}: wait histogram restarted (its bounds changed)")


def _restore_agent(
    proc: FloorProcessor, a: AgentS, intern: Callable[[list[str]], tuple[str, ...]]
) -> AgentTrack:
    track = AgentTrack(a.name, a.fold.site)
    track.ts = _undoubles(a.ts)
    codes = array("q")
    codes.frombytes(a.codes)
    track.codes = codes
    payloads: list[Payload] = []
    for p in a.payloads:
        group = p[3]
        payload: Payload = (
            p if group is None else (p[0], p[1], p[2], intern(list(group)), p[4], p[5])
        )
        payloads.append(payload)
    track.set_payloads(payloads)
    track.base = EMPTY_BASE if a.base is None else _fold(a.base, intern)
    track.fold = _fold(a.fold, intern)
    track.answers = _undoubles(a.answers)
    track.misses = _undoubles(a.misses)
    track.offers = _undoubles(a.offers)
    track.carried_at = _undoubles(a.carried_at)
    track.carried_from = _undoubles(a.carried_from)
    track.handled_at = _undoubles(a.handled_at)
    track.handled_s = _undoubles(a.handled_s)
    track.carried_gap = max(
        (x - y for x, y in zip(track.carried_at, track.carried_from, strict=True)), default=0.0
    )
    for e in a.ends:
        end = CallEnd(e.call_id, e.queue, e.answered_at, e.ended_at)
        end.done_at = e.done_at
        end.attached = e.attached
        track.ends.append(end)
        if end.done_at is None:
            track.add_pending(end)
    f = track.fold
    if f.known:
        assert f.state is not None
        proc.site(f.site)
        if f.group:
            counts = proc.groups[f.group]
            counts[f.state] = counts.get(f.state, 0) + 1
        site_counts = proc.site_counts[f.site]
        site_counts[f.state] = site_counts.get(f.state, 0) + 1
    return track

"""``callfloor replay``: files of events through the processor, one document out (SPEC §7).

Events are read in file order; the clock follows event time. The document is the
state at ``--at`` as if only the events with ``ts <= --at`` had arrived. Without
``--at`` the cut is the last valid event's ``ts``; when an earlier line carried a
later ``ts`` than that (out-of-order input), the files are read a second time with
that cut, so the "as if" rule holds exactly without buffering the whole input.

A file is NDJSON (one event per line) or, when its first non-space byte is ``[``, a
JSON array of events; with a feed format (``queue_log``, ``queue_log_csv``, ``connect``,
``ami``) its records go through that feed's mapper (:mod:`callfloor.feeds`), one mapper
for all the files of a pass (a day's log split over rotated files is one log).

Every rejected event (invalid, or refused by the ``[limits]``) is counted by the
processor; :class:`ReplaySummary` also keeps where the first few
of each reason were, for the one-line summary the command prints on stderr.
"""

from __future__ import annotations

import gc
import heapq
import math
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO, Final

import msgspec

from callfloor.alerts.driver import AlertDriver, attach_alerts
from callfloor.alerts.engine import HISTORY_S
from callfloor.config import Config
from callfloor.events import Event
from callfloor.feeds import FEED_FORMATS, FeedFormatError, FeedOptions, MapResult
from callfloor.feeds.stream import AnyMapper, Mapped, make_mapper, map_chunks
from callfloor.ingest.decode import BOM, Rejection, decode_line, has_blank_line, split_array
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.limits import Refusal
from callfloor.processors.views import AlertView

FORMATS: Final[tuple[str, ...]] = ("auto", "ndjson", "json", *FEED_FORMATS)
"""``auto``: a JSON array when the first non-space byte is ``[``, else NDJSON; the feed
formats read Asterisk queue_log (file or database export), Amazon Connect or AMI."""

CHUNK_BYTES: Final[int] = 4 * 1024 * 1024

# Rejected events listed per reason in the summary (the count is always complete).
POSITIONS_KEPT: Final[int] = 3

_LINES: Final = msgspec.json.Decoder(Event)
_ARRAY: Final = msgspec.json.Decoder(list[Event])
_RAW_ARRAY: Final = msgspec.json.Decoder(list[msgspec.Raw])
_TS: Final = attrgetter("ts")
_WHITESPACE: Final = b" \t\r\n"

OnOpen = Callable[[BinaryIO], None]


class ReplayInputError(Exception):
    """A file that cannot be replayed at all (unreadable, or a broken JSON array)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Position:
    """Where an event was: a 1-based line of an NDJSON file or a 0-based array element."""

    path: str
    unit: str  # "line" or "element"
    number: int


class Batch:
    """Decoded items of one chunk of a file, and where each of them came from.

    ``clean`` batches hold only events. Positions cost nothing on the common path:
    items are one per line (or element) from ``first``, unless ``numbers`` lists
    each item's line (a chunk with blank lines).
    """

    __slots__ = ("_numbers", "clean", "first", "items", "path", "unit")

    def __init__(
        self,
        items: list[Event | Rejection],
        *,
        path: str,
        unit: str,
        first: int,
        clean: bool,
        numbers: list[int] | None = None,
    ) -> None:
        self.items = items
        self.path = path
        self.unit = unit
        self.first = first
        self.clean = clean
        self._numbers = numbers

    def position(self, index: int) -> Position:
        """The position of ``items[index]``."""
        number = self.first + index if self._numbers is None else self._numbers[index]
        return Position(self.path, self.unit, number)


def read_ndjson_batches(path: str | Path, on_open: OnOpen | None = None) -> Iterator[Batch]:
    """Decode an NDJSON file in batches (line numbers are 1-based).

    Whole chunks of lines are decoded in one call (msgspec's ``decode_lines``);
    a chunk holding an invalid line is decoded again line by line, so each bad
    line is rejected on its own and the good ones around it still count.
    """
    name = str(path)
    first_line = 1
    with _open(path, on_open) as fh:
        rest = b""
        while True:
            block = fh.read(CHUNK_BYTES)
            if not block:
                chunk, rest = rest, b""
            else:
                data = rest + block
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    continue
                chunk, rest = data[:cut], data[cut:]
            if chunk:
                lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
                try:
                    items: list[Event | Rejection] = list(_LINES.decode_lines(chunk))
                except (msgspec.DecodeError, RecursionError):
                    yield _line_by_line(chunk, name, first_line)
                else:
                    yield _decoded_chunk(items, chunk, lines, name, first_line)
                first_line += lines
            if not block:
                return


def _decoded_chunk(
    items: list[Event | Rejection], chunk: bytes, lines: int, path: str, first_line: int
) -> Batch:
    """The batch of a chunk that ``decode_lines`` took whole.

    ``decode_lines`` reads whitespace-separated values, not lines: two objects on one
    line (or lines ended by a lone ``\r``) come out as two events. Such a line is one
    invalid line, as line by line, so the chunk is judged line by line when its items
    are not exactly one per non-blank line.
    """
    if len(items) == lines and not has_blank_line(chunk):
        return Batch(items, path=path, unit="line", first=first_line, clean=True)
    numbers = [
        first_line + k
        for k, line in enumerate(chunk.split(b"\n")[:lines])
        if line.strip(_WHITESPACE)
    ]
    if len(numbers) != len(items):
        return _line_by_line(chunk, path, first_line)
    return Batch(items, path=path, unit="line", first=first_line, clean=True, numbers=numbers)


def _line_by_line(chunk: bytes, path: str, first_line: int) -> Batch:
    items: list[Event | Rejection] = []
    numbers: list[int] = []
    for number, line in enumerate(chunk.split(b"\n"), start=first_line):
        if line.strip(_WHITESPACE):
            items.append(decode_line(line, number))
            numbers.append(number)
    return Batch(items, path=path, unit="line", first=first_line, clean=False, numbers=numbers)


def read_json_array(path: str | Path, on_open: OnOpen | None = None) -> Iterator[Batch]:
    """Decode a file holding one JSON array of events (positions are element indices).

    An array whose elements are not all valid events is decoded element by element,
    so each bad element is rejected on its own. A file that is not a JSON array at
    all (truncated, a syntax error) raises :class:`ReplayInputError`: nothing of it
    could be trusted, and a document without it would be silently wrong.
    """
    name = str(path)
    with _open(path, on_open) as fh:
        data = fh.read()
    try:
        items: list[Event | Rejection] = list(_ARRAY.decode(data))
    except (msgspec.DecodeError, RecursionError):
        pass
    else:
        yield Batch(items, path=name, unit="element", first=0, clean=True)
        return
    try:
        raws: list[bytes] = [bytes(raw) for raw in _RAW_ARRAY.decode(data)]
    except RecursionError:
        # An element nested deeper than the decoder allows: split the top level by
        # hand, so that element alone is rejected.
        raws = split_array(data.strip(_WHITESPACE))
    except msgspec.DecodeError as exc:
        raise ReplayInputError(path, f"not a JSON array of events: {exc}") from None
    items = [decode_line(raw, i) for i, raw in enumerate(raws)]
    yield Batch(items, path=name, unit="element", first=0, clean=False)


def read_ndjson(path: str | Path) -> Iterator[Event | Rejection]:
    """Decode an NDJSON file item by item (see :func:`read_ndjson_batches`)."""
    for batch in read_ndjson_batches(path):
        yield from batch.items


def file_format(path: str | Path) -> str:
    """``json`` when the file's first non-space byte is ``[``, else ``ndjson``."""
    with _open(path) as fh:
        while block := fh.read(65536):
            stripped = block.lstrip(_WHITESPACE)
            if stripped:
                return "json" if stripped[:1] == b"[" else "ndjson"
    return "ndjson"


@dataclass
class FeedTally:
    """What a feed's mapper skipped (carrying nothing for callfloor) and rejected, by verb."""

    skipped: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    def add(self, result: MapResult) -> None:
        for verb, n in result.skipped.items():
            self.skipped[verb] = self.skipped.get(verb, 0) + n
        for r in result.rejected:
            if r.verb is not None:
                self.rejected[r.verb] = self.rejected.get(r.verb, 0) + 1


def read_feed_batches(
    path: str | Path,
    mapper: AnyMapper,
    tally: FeedTally | None = None,
    on_open: OnOpen | None = None,
) -> Iterator[Batch]:
    """A feed file through ``mapper``, in batches; rejected records become rejections."""
    name = str(path)
    with _open(path, on_open) as fh:
        chunks = iter(lambda: fh.read(CHUNK_BYTES), b"")
        try:
            for mapped in map_chunks(mapper, chunks, offset=fh.tell()):
                if tally is not None:
                    tally.add(mapped.result)
                yield _feed_batch(mapped, name)
        except FeedFormatError as exc:
            raise ReplayInputError(path, str(exc)) from None


def _feed_batch(mapped: Mapped, path: str) -> Batch:
    """The events and rejections of a mapped batch, in record order, with their lines."""
    result = mapped.result
    lines = mapped.lines
    if not result.rejected:
        numbers = [lines[i] for i in result.origins]
        return Batch(result.events, path=path, unit="line", first=0, clean=True, numbers=numbers)  # type: ignore[arg-type]
    items: list[Event | Rejection] = []
    numbers = []
    rejected = sorted(result.rejected, key=attrgetter("index"))
    j = 0
    for event, origin in zip(result.events, result.origins, strict=True):
        while j < len(rejected) and rejected[j].index < origin:
            r = rejected[j]
            items.append(Rejection(lines[r.index], r.reason, None, r.message, r.ts))
            numbers.append(lines[r.index])
            j += 1
        items.append(event)
        numbers.append(lines[origin])
    for r in rejected[j:]:
        items.append(Rejection(lines[r.index], r.reason, None, r.message, r.ts))
        numbers.append(lines[r.index])
    return Batch(items, path=path, unit="line", first=0, clean=False, numbers=numbers)


def read_batches(
    paths: Iterable[str | Path],
    fmt: str = "auto",
    options: FeedOptions | None = None,
    tally: FeedTally | None = None,
    on_open: OnOpen | None = None,
) -> Iterator[Batch]:
    """Every item of every file, in file order, in batches.

    With a feed format one mapper (built from ``options``) reads all the files.
    ``on_open`` is given each file as it is opened (for progress reports).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (supported: {', '.join(FORMATS)})")
    if fmt in FEED_FORMATS:
        mapper = make_mapper(fmt, options or FeedOptions())
        for path in paths:
            yield from read_feed_batches(path, mapper, tally, on_open)
        return
    for path in paths:
        kind = file_format(path) if fmt == "auto" else fmt
        if kind == "json":
            yield from read_json_array(path, on_open)
        else:
            yield from read_ndjson_batches(path, on_open)


def _open(path: str | Path, on_open: OnOpen | None = None) -> BinaryIO:
    """Open for reading, past a UTF-8 byte order mark; a file that cannot be opened, or
    that is not a regular file, is a :class:`ReplayInputError`."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    except OSError as exc:
        raise ReplayInputError(path, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.close()
        # A pipe can be read once: the format sniff (and the second pass that
        # out-of-order input needs) would find it empty and print an empty document.
        raise ReplayInputError(
            path,
            "not a regular file (a pipe or a device); replay may read its input twice, "
            "so save it to a file first",
        )
    if fh.read(len(BOM)) != BOM:  # Windows editors and PowerShell write one
        fh.seek(0)
    if on_open is not None:
        on_open(fh)
    return fh


@contextmanager
def batch_gc() -> Iterator[None]:
    """Fewer garbage-collector passes while a replay builds its state.

    The processor keeps many small long-lived containers; with the default
    thresholds the collector re-scans them thousands of times during a replay
    (about 15 % of its time). The objects are freed by reference counting anyway,
    so collecting less often is safe. The previous thresholds are restored.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


@dataclass
class ReasonTally:
    """Rejected events of one reason: how many, and where the first few were."""

    count: int = 0
    positions: list[Position] = field(default_factory=list)

    def add(self, position: Position) -> None:
        self.count += 1
        if len(self.positions) < POSITIONS_KEPT:
            self.positions.append(position)


@dataclass(frozen=True, slots=True)
class OutOfOrder:
    """An event further than ``[limits] max_lateness`` before the latest one before it:
    the reason a bounded replay was run again keeping everything."""

    position: Position
    ts: float
    latest: float  # the latest ts before it
    lateness: float  # [limits] max_lateness, s


class _TooOld(Exception):
    """Raised by a bounded pass that meets an event it could no longer fold exactly."""

    def __init__(self, found: OutOfOrder) -> None:
        super().__init__(found)
        self.found = found


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """How far a replay is, given to a progress callback after each batch."""

    pass_number: int  # 1, then one more for each read again (the cut, a re-run, alerts)
    bytes_done: int  # of the files of this pass, as read so far
    bytes_total: int
    events: int  # applied so far in this pass


ProgressCallback = Callable[[ReplayProgress], None]


@dataclass
class ReplaySummary:
    """What a replay did, for the command's stderr summary.

    The counts come from the processor's document counters; ``rejected`` keeps,
    per reason, the positions of the first few rejected events (decoding
    rejections and ``[limits]`` refusals alike). ``bounded`` says which memory mode
    produced the document; ``out_of_order`` why a bounded attempt was given up.
    """

    as_of: float
    at_given: bool
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    late: int = 0
    by_reason: dict[str, ReasonTally] = field(default_factory=dict)
    left_out: int = 0  # events after the cut (valid or not): they never "arrived"
    last_event: Position | None = None  # the event whose ts became as_of (no --at)
    latest_ts: float | None = None  # the latest ts before the last event, when after it
    feed: FeedTally | None = None  # a feed format's skipped and rejected records by verb
    bounded: bool = True  # history older than max_lateness folded as it went
    lateness: float = 0.0  # [limits] max_lateness, s
    out_of_order: OutOfOrder | None = None  # why the bounded attempt was given up

    @property
    def as_of_from_earlier_max(self) -> bool:
        """True when as_of came from the last event but an earlier one was later."""
        return not self.at_given and self.latest_ts is not None and self.latest_ts > self.as_of


@dataclass
class _Pass:
    """One pass over the input: the processor and what the summary needs from it."""

    proc: FloorProcessor
    last: float | None = None  # ts of the last applied (not refused) event
    last_at: tuple[Batch, int] | None = None
    highest: float | None = None  # highest ts seen (valid or rejected-with-ts)
    peak_at_last: float | None = None  # highest ts seen up to and with the last event
    left_out: int = 0
    by_reason: dict[str, ReasonTally] = field(default_factory=dict)
    feed: FeedTally = field(default_factory=FeedTally)
    driver: AlertDriver | None = None

    def note(self, reason: str, position: Position) -> None:
        tally = self.by_reason.get(reason)
        if tally is None:
            tally = self.by_reason[reason] = ReasonTally()
        tally.add(position)


class _Order:
    """Checks that the events of a bounded pass stay within ``lateness`` of time order.

    Batch by batch: every event of a batch (up to the cut) is at or after the latest
    event of the batches before it minus ``lateness``. The processor folds history
    before its clock minus ``lateness`` between batches, so an event passing the check
    is never older than what was folded, and the numbers are those of keeping
    everything; the time-order alert pass relies on the same check to sort with a
    bounded buffer.
    """

    __slots__ = ("lateness", "latest")

    def __init__(self, lateness: float) -> None:
        self.lateness = lateness
        self.latest = -math.inf

    def admit(self, batch: Batch, cut: float | None) -> OutOfOrder | None:
        """Check ``batch``, then count it in; the first event too old, if any."""
        items = batch.items
        index: list[int] | None = None
        if batch.clean:
            stamps: list[float] = list(map(_TS, items))
        else:
            index = [i for i, item in enumerate(items) if not isinstance(item, Rejection)]
            stamps = [items[i].ts for i in index]  # type: ignore[misc]
        if cut is not None and stamps and max(stamps) > cut:
            keep = [k for k, t in enumerate(stamps) if t <= cut]
            index = [k if index is None else index[k] for k in keep]
            stamps = [stamps[k] for k in keep]
        if not stamps:
            return None
        floor = self.latest - self.lateness
        if min(stamps) < floor:
            k = next(k for k, t in enumerate(stamps) if t < floor)
            i = k if index is None else index[k]
            return OutOfOrder(batch.position(i), stamps[k], self.latest, self.lateness)
        high = max(stamps)
        if high > self.latest:
            self.latest = high
        return None


class _Progress:
    """Bytes read and events applied, for a :data:`ProgressCallback`."""

    def __init__(self, callback: ProgressCallback, paths: list[str | Path]) -> None:
        self.callback = callback
        self.total = 0
        for path in paths:
            with suppress(OSError):  # reported by the reader
                self.total += os.stat(path).st_size
        self.pass_number = 0
        self._done = 0
        self._file: BinaryIO | None = None
        self._file_size = 0

    def start(self) -> None:
        """A pass begins (files are read from their starts again)."""
        self.pass_number += 1
        self._done = 0
        self._file = None
        self._file_size = 0

    def opened(self, fh: BinaryIO) -> None:
        self._done += self._file_size
        self._file = fh
        self._file_size = os.fstat(fh.fileno()).st_size

    def batch(self, events: int) -> None:
        here = 0
        if self._file is not None and not self._file.closed:
            here = min(self._file.tell(), self._file_size)
        done = min(self._done + here, self.total)
        self.callback(ReplayProgress(self.pass_number, done, self.total, events))


def _run(
    paths: list[str | Path],
    config: Config,
    fmt: str,
    cut: float | None,
    options: FeedOptions | None = None,
    *,
    bounded: bool = False,
    progress: _Progress | None = None,
) -> _Pass:
    run = _Pass(FloorProcessor(config, changes=False))
    proc = run.proc
    run.driver = attach_alerts(proc, config)
    apply = proc.apply
    order = _Order(config.limits.max_lateness_s) if bounded else None
    on_open = progress.opened if progress is not None else None
    for batch in read_batches(paths, fmt, options, run.feed, on_open):
        # What the processor built so far is long-lived: out of the collector's sight
        # (it is freed by reference counting as ever), so each pass scans only new
        # objects. With the state's histories this halves a replay's GC time.
        gc.freeze()
        items = batch.items
        if not items:
            continue
        if order is not None:
            too_old = order.admit(batch, cut)
            if too_old is not None:
                raise _TooOld(too_old)
        _apply_batch(run, batch, cut, apply)
        if order is not None:
            _fold(run)
        if progress is not None:
            progress.batch(proc.n_events)
    return run


def _apply_batch(
    run: _Pass, batch: Batch, cut: float | None, apply: Callable[[Event], Refusal | None]
) -> None:
    items = batch.items
    if batch.clean:
        top: float = max(map(_TS, items))
        if cut is None or top <= cut:
            # The common case: every item is an event before the cut. One call
            # per event, no Python bytecode around it.
            results = list(map(apply, items))  # type: ignore[arg-type]
            before = run.highest
            if before is None or top > before:
                run.highest = top
            if results.count(None) == len(results):
                run.last = items[-1].ts  # type: ignore[assignment]
                run.last_at = (batch, len(items) - 1)
                run.peak_at_last = run.highest
            else:
                _refusals(run, batch, results, before)
            return
    _slow_batch(run, batch, cut)


def _fold(run: _Pass) -> None:
    """Bounded memory: fold what lies before the lateness horizon, and forget resolved
    alerts no document lists any more (both as live operation does)."""
    if run.proc.fold_history() is not None and run.driver is not None:
        run.driver.engine.prune(run.proc.clock - HISTORY_S)


def _refusals(
    run: _Pass, batch: Batch, results: list[Refusal | None], before: float | None
) -> None:
    """Record the refused events of a clean batch; ``last`` is the last one applied.

    ``before`` is the highest ts seen before this batch.
    """
    last_index: int | None = None
    for i, result in enumerate(results):
        if result is None:
            last_index = i
        else:
            run.note(result.reason, batch.position(i))
    if last_index is not None:
        run.last = batch.items[last_index].ts  # type: ignore[assignment]
        run.last_at = (batch, last_index)
        upto: float = max(map(_TS, batch.items[: last_index + 1]))
        run.peak_at_last = upto if before is None else max(before, upto)


def _slow_batch(run: _Pass, batch: Batch, cut: float | None) -> None:
    """A batch with rejections or events after the cut: item by item."""
    proc = run.proc
    for i, item in enumerate(batch.items):
        if isinstance(item, Rejection):
            rts = item.ts
            if cut is None or rts is None or rts <= cut:
                proc.count_rejected(item.reason)
                run.note(item.reason, batch.position(i))
            else:
                run.left_out += 1
            if rts is not None and (run.highest is None or rts > run.highest):
                run.highest = rts  # a rejected event after the cut must not count either
            continue
        ts: float = item.ts  # type: ignore[assignment]
        if run.highest is None or ts > run.highest:
            run.highest = ts
        if cut is not None and ts > cut:
            run.left_out += 1
            continue
        refusal = proc.apply(item)
        if refusal is not None:
            run.note(refusal.reason, batch.position(i))
            continue
        run.last = ts
        run.last_at = (batch, i)
        run.peak_at_last = run.highest


def _alerts_in_time_order(
    paths: list[str | Path],
    config: Config,
    fmt: str,
    options: FeedOptions | None,
    at: float,
    bounded: bool,
    progress: _Progress | None = None,
) -> Callable[[], list[AlertView]]:
    """The alert list of the events up to ``at`` applied in time order (file order
    breaking ties): the timeline as it would have been had they come in order.

    ``bounded``: the input passed :class:`_Order`'s check, so an event can be applied
    once the latest event read is more than ``max_lateness`` past it (no later one can
    come before it) and only that span of events is held; else every event is sorted.
    """
    proc = FloorProcessor(config, changes=False)
    driver = attach_alerts(proc, config)
    assert driver is not None
    on_open = None
    if progress is not None:
        progress.start()
        on_open = progress.opened
    if bounded:
        lateness = config.limits.max_lateness_s
        held: list[tuple[float, int, Event]] = []
        seq = 0
        latest = -math.inf
        for batch in read_batches(paths, fmt, options, on_open=on_open):
            gc.freeze()
            floor = latest - lateness
            while held and held[0][0] < floor:
                proc.apply(heapq.heappop(held)[2])
            for item in batch.items:
                if isinstance(item, Rejection) or item.ts > at:  # type: ignore[operator]
                    continue
                t: float = item.ts  # type: ignore[assignment]
                if t < floor:
                    # Not the input the first pass checked: sort it all after all.
                    return _alerts_in_time_order(paths, config, fmt, options, at, False, progress)
                seq += 1
                heapq.heappush(held, (t, seq, item))
                if t > latest:
                    latest = t
            if proc.fold_history() is not None:
                driver.engine.prune(proc.clock - HISTORY_S)
            if progress is not None:
                progress.batch(proc.n_events + len(held))
        while held:
            proc.apply(heapq.heappop(held)[2])
    else:
        events: list[Event] = []
        for batch in read_batches(paths, fmt, options, on_open=on_open):
            for item in batch.items:
                if isinstance(item, Rejection):
                    continue
                if item.ts <= at:  # type: ignore[operator]
                    events.append(item)
            if progress is not None:
                progress.batch(len(events))
        events.sort(key=_TS)
        for event in events:
            proc.apply(event)
    proc.tick(at)
    return driver.alerts


@dataclass
class ReplayResult:
    """The processor after a replay (its clock at the document time) and the summary."""

    processor: FloorProcessor
    summary: ReplaySummary


def run_replay(
    paths: list[str | Path],
    config: Config,
    at: float | None = None,
    fmt: str = "auto",
    options: FeedOptions | None = None,
    *,
    keep_everything: bool = False,
    progress: ProgressCallback | None = None,
) -> ReplayResult:
    """Replay ``paths`` and return the processor at the document time with a summary.

    Without ``at`` the cut is the last valid event's ``ts``; if any event (valid, or
    rejected with a readable ``ts``) lies after it, a second pass applies the cut.
    Raises :class:`ReplayInputError` for a file that cannot be read at all. A feed
    format's mapper takes ``options`` (default: from ``config``).

    Memory: history older than ``[limits] max_lateness`` before the latest event is
    folded as the live service folds it, so memory follows the lateness span, not the
    input's length; the document is the same as keeping everything. An event further
    than that out of time order cannot be folded exactly: the replay then starts again
    keeping every history (``keep_everything`` starts there), and the summary says why.
    """
    given = at is not None
    if fmt in FEED_FORMATS and options is None:
        options = FeedOptions.from_config(config)
    tracker = _Progress(progress, paths) if progress is not None else None
    out_of_order: OutOfOrder | None = None
    bounded = not keep_everything
    with batch_gc():
        while True:
            try:
                run, cut, latest = _passes(paths, config, fmt, at, options, bounded, tracker)
                break
            except _TooOld as exc:
                out_of_order = exc.found
                bounded = False
        proc = run.proc
        if cut is not None:
            proc.tick(cut)
        elif proc.clock == -math.inf:
            proc.tick(0.0)  # nothing valid to replay: the document is at the epoch
        if run.driver is not None and run.driver.late_events:
            # Events out of time order: the numbers are exact whatever the order, the
            # alert instants are derived again from the events in time order.
            proc.alert_source = _alerts_in_time_order(
                paths, config, fmt, options, proc.clock, bounded, tracker
            )
    counters = proc.view.counters()
    summary = ReplaySummary(
        as_of=proc.clock,
        at_given=given,
        events=counters.events,
        rejected=counters.rejected,
        duplicates=counters.duplicates,
        late=counters.late,
        by_reason=run.by_reason,
        left_out=run.left_out,
        last_event=run.last_at[0].position(run.last_at[1]) if run.last_at else None,
        latest_ts=latest,
        feed=run.feed if fmt in FEED_FORMATS else None,
        bounded=bounded,
        lateness=config.limits.max_lateness_s,
        out_of_order=out_of_order,
    )
    return ReplayResult(proc, summary)


def _passes(
    paths: list[str | Path],
    config: Config,
    fmt: str,
    at: float | None,
    options: FeedOptions | None,
    bounded: bool,
    tracker: _Progress | None,
) -> tuple[_Pass, float | None, float | None]:
    """The pass (or two) of a replay: the last pass, the document time, and the latest
    ts before the last event when it was later than it."""
    if tracker is not None:
        tracker.start()
    run = _run(paths, config, fmt, at, options, bounded=bounded, progress=tracker)
    latest: float | None = None
    if at is None and run.last is not None:
        if run.peak_at_last is not None and run.peak_at_last > run.last:
            latest = run.peak_at_last  # an event before the last one was later
        if run.highest is not None and run.highest > run.last:
            cut = run.last
            del run  # the first pass's state is not needed: free it before the second
            if tracker is not None:
                tracker.start()
            run = _run(paths, config, fmt, cut, options, bounded=bounded, progress=tracker)
        at = run.last
    return run, at, latest


def replay(
    paths: list[str | Path],
    config: Config,
    at: float | None = None,
    fmt: str = "auto",
    options: FeedOptions | None = None,
) -> FloorProcessor:
    """The processor after replaying ``paths``, with its clock at the document time."""
    return run_replay(paths, config, at, fmt, options).processor


def replay_document(
    paths: list[str | Path],
    config: Config,
    at: float | None = None,
    fmt: str = "auto",
    options: FeedOptions | None = None,
) -> dict[str, object]:
    """The SPEC §7 document of a replay, as plain JSON-ready Python values."""
    proc = replay(paths, config, at, fmt, options)
    doc: dict[str, object] = msgspec.to_builtins(proc.view.document())
    return doc

"""``callfloor replay``: files of events through the processor, one document out (SPEC §7).

Events are read in file order; the clock follows event time. The document is the
state at ``--at`` as if only the events with ``ts <= --at`` had arrived. Without
``--at`` the cut is the last valid event's ``ts``; when an earlier line carried a
later ``ts`` than that (out-of-order input), the files are read a second time with
that cut, so the "as if" rule holds exactly without buffering the whole input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from callfloor.config import Config
from callfloor.events import Event
from callfloor.ingest.decode import Rejection, decode_line
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import Doc, build_document

FORMATS = ("ndjson",)


def read_ndjson(path: str | Path) -> Iterator[Event | Rejection]:
    """Decode an NDJSON file line by line (line numbers are 1-based in rejections)."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.isspace():
                continue
            yield decode_line(line, number)


def read_events(paths: Iterable[str | Path], fmt: str = "ndjson") -> Iterator[Event | Rejection]:
    """Every item of every file, in file order."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (supported: {', '.join(FORMATS)})")
    for path in paths:
        yield from read_ndjson(path)


def _run(
    paths: list[str | Path], config: Config, fmt: str, cut: float | None
) -> tuple[FloorProcessor, float | None, float | None]:
    proc = FloorProcessor(config)
    apply = proc.apply
    last: float | None = None
    highest: float | None = None
    for item in read_events(paths, fmt):
        if isinstance(item, Rejection):
            if cut is None or item.ts is None or item.ts <= cut:
                proc.count_rejected(item.reason)
            continue
        ts: float = item.ts  # type: ignore[assignment]
        if cut is not None and ts > cut:
            continue
        apply(item)
        last = ts
        if highest is None or ts > highest:
            highest = ts
    return proc, last, highest


def replay(
    paths: list[str | Path], config: Config, at: float | None = None, fmt: str = "ndjson"
) -> FloorProcessor:
    """The processor after replaying ``paths``, with its clock at the document time."""
    proc, last, highest = _run(paths, config, fmt, at)
    if at is None:
        if last is None:
            return proc
        if highest is not None and highest > last:
            proc, _, _ = _run(paths, config, fmt, last)
        at = last
    proc.tick(at)
    return proc


def replay_document(
    paths: list[str | Path], config: Config, at: float | None = None, fmt: str = "ndjson"
) -> Doc:
    """The SPEC §7 document of a replay."""
    proc = replay(paths, config, at, fmt)
    if proc.clock == float("-inf"):
        proc.tick(0.0)
    return build_document(proc)

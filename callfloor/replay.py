"""``callfloor replay``: files of events through the processor, one document out (SPEC §7).

Events are read in file order; the clock follows event time. The document is the
state at ``--at`` as if only the events with ``ts <= --at`` had arrived. Without
``--at`` the cut is the last valid event's ``ts``; when an earlier line carried a
later ``ts`` than that (out-of-order input), the files are read a second time with
that cut, so the "as if" rule holds exactly without buffering the whole input.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from callfloor.config import Config
from callfloor.events import Event
from callfloor.ingest.decode import Rejection, decode_line
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import Doc, build_document

FORMATS = ("ndjson",)

_LINES = msgspec.json.Decoder(Event)


CHUNK_BYTES = 4 * 1024 * 1024


def read_ndjson_batches(path: str | Path) -> Iterator[list[Event | Rejection]]:
    """Decode an NDJSON file in batches (line numbers are 1-based in rejections).

    Whole chunks of lines are decoded in one call (msgspec's ``decode_lines``);
    a chunk holding an invalid line is decoded again line by line, so each bad
    line is rejected on its own and the good ones around it still count.
    """
    first_line = 1
    with open(path, "rb") as fh:
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
                batch: list[Event | Rejection]
                try:
                    batch = list(_LINES.decode_lines(chunk))
                except msgspec.DecodeError:
                    batch = [
                        decode_line(line, number)
                        for number, line in enumerate(chunk.splitlines(), start=first_line)
                        if line and not line.isspace()
                    ]
                yield batch
                first_line += chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            if not block:
                return


def read_ndjson(path: str | Path) -> Iterator[Event | Rejection]:
    """Decode an NDJSON file item by item (see :func:`read_ndjson_batches`)."""
    for batch in read_ndjson_batches(path):
        yield from batch


def read_batches(
    paths: Iterable[str | Path], fmt: str = "ndjson"
) -> Iterator[list[Event | Rejection]]:
    """Every item of every file, in file order, in batches."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (supported: {', '.join(FORMATS)})")
    for path in paths:
        yield from read_ndjson_batches(path)


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


def _run(
    paths: list[str | Path], config: Config, fmt: str, cut: float | None
) -> tuple[FloorProcessor, float | None, float | None]:
    proc = FloorProcessor(config)
    apply = proc.apply
    last: float | None = None
    highest: float | None = None
    for batch in read_batches(paths, fmt):
        for item in batch:
            if isinstance(item, Rejection):
                rts = item.ts
                if cut is None or rts is None or rts <= cut:
                    proc.count_rejected(item.reason)
                if rts is not None and (highest is None or rts > highest):
                    highest = rts  # a rejected event after the cut must not count either
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
    """The processor after replaying ``paths``, with its clock at the document time.

    Without ``at`` the cut is the last valid event's ``ts``; if any event (valid, or
    rejected with a readable ``ts``) lies after it, a second pass applies the cut.
    """
    with batch_gc():
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

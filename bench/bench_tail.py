"""Benchmark: a queue_log line written -> applied, while the live service tails the file.

Run with ``.venv/bin/python -m bench.bench_tail``. Target: p99 <= 100 ms of the later of
(line written, service clock passing its time) -> applied.

The live service (a :class:`FloorService`, the memory store) runs in this process with a
``queue_log`` source (the default ``poll_interval``, 20 ms, and position every second);
a writer process (this script with ``--write``) appends ENTERQUEUE lines one at a time
(open, write, close, as Asterisk's logger flushes each line) at ``--rate`` lines/s for
``--seconds``, noting the monotonic clock (system-wide) after each write. Each line's
time is two seconds before it is written, so the watermark (one second behind the
clock) has passed it: the later of the two moments is the write. A line counts as
applied when its batch is acknowledged: appended to the store and admitted (applied)
by the writer. Every call stays waiting (no answer lines), so the mapper's state grows
through the run, as on a busy day. Medians of
``--runs`` runs of p50, p99 and max.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine, median
from callfloor.config import SourceConfig, parse_config
from callfloor.feeds.base import FeedOptions, MapResult
from callfloor.ingest.source import Batch, Receipt
from callfloor.ingest.tail import TailOptions, TailSource
from callfloor.service import FloorService


class TimedTail(TailSource):
    """Notes when each batch (by the offset it reaches) is acknowledged."""

    acks: list[tuple[int, float]]

    def _mapped(
        self, result: MapResult, lines: list[bytes], numbers: list[int], records: int
    ) -> Batch:
        batch = super()._mapped(result, lines, numbers, records)
        reached = self._splitter.offset
        inner = batch.ack
        acks = self.acks

        def ack(receipt: Receipt) -> None:
            acks.append((reached, time.monotonic()))
            if inner is not None:
                inner(receipt)

        batch.ack = ack
        return batch


def write(path: Path, rate: float, seconds: float, out: Path) -> None:
    """The writer process: lines at ``rate`` per second; (end offset, monotonic) to ``out``."""
    written: list[tuple[int, float]] = []
    gap = 1.0 / rate
    start = time.monotonic()
    offset = 0
    i = 0
    while time.monotonic() - start < seconds:
        ts = int(time.time()) - 2
        line = f"{ts}|b{i}|q1|NONE|ENTERQUEUE||5551234|1\n".encode()
        with path.open("ab") as f:
            f.write(line)
        offset += len(line)
        written.append((offset, time.monotonic()))
        i += 1
        wait = start + i * gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    out.write_text("\n".join(f"{o} {t!r}" for o, t in written), encoding="utf-8")


async def one_run(rate: float, seconds: float) -> list[float]:
    """Latencies (s) of every line of one run."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queue_log"
        path.touch()
        config = parse_config({}, "<bench>")
        service = FloorService(config, host="127.0.0.1", port=0, tick_s=0.05)
        source = TimedTail(
            SourceConfig(kind="queue_log", name="ql", path=str(path)),
            FeedOptions(),
            TailOptions(),
            counts=service.stats.source_counts,
        )
        source.acks = []
        task = asyncio.create_task(service.run([source]))
        await service.started.wait()
        await asyncio.sleep(0.2)
        out = Path(tmp) / "written"
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bench.bench_tail", "--write", str(path), "--out", str(out)),
            *("--rate", repr(rate), "--seconds", repr(seconds)),
        )
        await writer.wait()
        await asyncio.sleep(0.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        written = [
            (int(o), float(t))
            for o, t in (row.split() for row in out.read_text(encoding="utf-8").splitlines())
        ]
    acks = source.acks
    ack_offsets = [o for o, _ in acks]
    latencies = []
    for end, at in written:
        k = bisect.bisect_left(ack_offsets, end)
        if k < len(acks):
            latencies.append(acks[k][1] - at)
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write is not None:
        write(args.write, args.rate, args.seconds, args.out)
        return
    p50s: list[float] = []
    p99s: list[float] = []
    maxes: list[float] = []
    counts: list[float] = []
    for _ in range(args.runs):
        lat = asyncio.run(one_run(args.rate, args.seconds))
        counts.append(float(len(lat)))
        p50s.append(_pct(lat, 0.5) * 1000)
        p99s.append(_pct(lat, 0.99) * 1000)
        maxes.append(max(lat) * 1000)
    print(machine())
    print(
        f"tail write -> applied at {args.rate:g} lines/s for {args.seconds:g} s "
        f"(median of {args.runs} runs, {median(counts):.0f} lines each): "
        f"p50 {median(p50s):.1f} ms, p99 {median(p99s):.1f} ms, max {median(maxes):.1f} ms"
    )


if __name__ == "__main__":
    main()

"""The feed sources' shared part: counting, events ahead of the clock, refused events."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from callfloor.feeds.queue_log import QueueLogMapper
from callfloor.ingest.feedsource import FeedBatcher
from callfloor.ingest.source import Receipt
from callfloor.processors.limits import Refusal

T = 1_765_100_000


def mapped(*ts: int) -> tuple[QueueLogMapper, object]:
    mapper = QueueLogMapper()
    lines = [f"{t}|c{i}|q1|NONE|ENTERQUEUE||5551234|1".encode() for i, t in enumerate(ts)]
    return mapper, mapper.feed(lines, [i * 100 for i in range(len(lines))])


def letters(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_beyond_the_allowed_skew_are_rejected_and_dead_lettered(tmp_path: Path) -> None:
    """An event later than ``not_after`` leaves the batch as ``ts_in_future``, written down."""
    dead = tmp_path / "dead.ndjson"
    batcher = FeedBatcher("ql", "queue_log", not_after=lambda: T + 10, dead_letters=str(dead))
    _, result = mapped(T, T + 3600)
    batch = batcher.batch(result, 2)  # type: ignore[arg-type]
    assert [e.call_id for e in batch.events] == ["c0"]  # type: ignore[attr-defined]
    assert batch.rejected == {"ts_in_future": 1}
    assert batcher.counts.rejected_total == {("ql", "queue_log", "ts_in_future"): 1}
    (letter,) = letters(dead)
    assert letter["reason"] == "ts_in_future"
    assert letter["event"]["call_id"] == "c1"  # type: ignore[index]


def test_events_the_floor_refused_are_dead_lettered_on_acknowledgement(tmp_path: Path) -> None:
    """A refusal in the receipt becomes a dead letter with its reason, once acknowledged."""
    dead = tmp_path / "dead.ndjson"
    batcher = FeedBatcher("ql", "queue_log", dead_letters=str(dead))
    _, result = mapped(T, T + 1)
    batch = batcher.batch(result, 2)  # type: ignore[arg-type]
    assert batch.ack is not None
    batch.ack(Receipt(refused=[(1, Refusal("name_too_long", "queue", "too long"))]))
    (letter,) = letters(dead)
    assert letter["reason"] == "name_too_long" and letter["event"]["call_id"] == "c1"  # type: ignore[index]
    assert batcher.counts.deadletters_total == {("ql", "queue_log", "name_too_long"): 1}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _junk(batcher: FeedBatcher, n: int) -> None:
    """``n`` unmappable lines through the batcher (each a rejection and a dead letter)."""
    mapper = QueueLogMapper()
    result = mapper.feed([b"junk"] * n, list(range(0, 5 * n, 5)))
    batcher.batch(result, n)


def test_dead_letters_beyond_the_rate_are_counted_not_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A flood of junk lines: a burst of 1,000 letters is written, the rest are counted
    as suppressed (every rejection still counted), the rate refills, and one warning a
    minute sums up what was left unwritten."""
    dead = tmp_path / "dead.ndjson"
    clock = Clock()
    batcher = FeedBatcher("ql", "queue_log", dead_letters=str(dead), monotonic=clock)
    _junk(batcher, 1500)
    key = ("ql", "queue_log", "malformed_line")
    assert batcher.counts.rejected_total == {key: 1500}
    assert len(letters(dead)) == 1000
    assert batcher.counts.deadletters_total == {key: 1000}
    assert batcher.counts.deadletters_suppressed_total == {key: 500}
    clock.now += 2.0  # 200 letters' worth of rate
    _junk(batcher, 300)
    assert len(letters(dead)) == 1200
    assert batcher.counts.deadletters_suppressed_total == {key: 600}
    assert "deadletters_suppressed" not in caplog.text
    clock.now += 61.0
    with caplog.at_level(logging.WARNING, logger="callfloor.ingest"):
        _junk(batcher, 1)
    assert "deadletters_suppressed source=ql n=600" in caplog.text
    assert len(letters(dead)) == 1201  # the bucket refilled meanwhile


def test_the_last_run_of_suppressed_letters_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A flood that stops: the letters left unwritten are summed up in a warning once a
    minute has passed, on the next batch (even one with no rejection), and on close (no
    further rejection need ever come)."""
    clock = Clock()
    batcher = FeedBatcher(
        "ql", "queue_log", dead_letters=str(tmp_path / "dead.ndjson"), monotonic=clock
    )
    _junk(batcher, 1010)
    clock.now += 61.0
    with caplog.at_level(logging.WARNING, logger="callfloor.ingest"):
        _, good = mapped(T)
        batcher.batch(good, 1)  # type: ignore[arg-type]
    assert "deadletters_suppressed source=ql n=10" in caplog.text
    caplog.clear()
    clock.now += 100.0  # the bucket is full again
    _junk(batcher, 1005)
    with caplog.at_level(logging.WARNING, logger="callfloor.ingest"):
        batcher.close()
    assert "deadletters_suppressed source=ql n=5" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="callfloor.ingest"):
        batcher.close()
    assert "deadletters_suppressed" not in caplog.text

"""The writer's partitions: adopted from a store, dropped with a last checkpoint, never
fed an entry twice, and the invalid items of logged rounds counted again on recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from helpers import T0, config, decode, ev

from callfloor.bus import ChangeBus
from callfloor.ingest.backlog import Backlog
from callfloor.ingest.source import Batch
from callfloor.processors.engine import FloorProcessor
from callfloor.service.stats import IngestStats
from callfloor.service.writer import Writer
from callfloor.store.base import ALL, Logged
from callfloor.store.file import FileStore


def _writer(store: FileStore, proc: FloorProcessor | None = None) -> Writer:
    return Writer(
        proc,
        stats=IngestStats(),
        backlog=Backlog(10_000),
        store=store,
        bus=ChangeBus(),
        watermark=lambda: T0 + 100,
        tick_s=1.0,
        config=config(),
        checkpoint_every_s=60.0,
    )


def _queued(i: int, ts: float) -> Batch:
    return Batch([decode(ev("call_queued", ts, call_id=f"c{i}", queue="q", id=f"e{i}"))])


def _doc(writer: Writer) -> bytes:
    [proc] = writer.processors()
    proc.tick(T0 + 100)
    return msgspec.json.encode(proc.view.document())


async def test_a_dropped_partition_is_adopted_again_where_it_was_left(tmp_path: Path) -> None:
    """drop(checkpoint=True) saves the partition; adopt() elsewhere restores the same state."""
    store = FileStore(tmp_path)
    await store.open()
    first = _writer(store)
    await first.adopt(ALL)
    assert first.owned == {ALL}
    await first._round([_queued(1, T0), _queued(2, T0 + 1)])
    expected = _doc(first)
    await first.drop(ALL, checkpoint=True)
    assert first.owned == frozenset() and first.dropped_total == 1
    second = _writer(store)
    await second.adopt(ALL)
    assert _doc(second) == expected
    await store.close()


async def test_an_entry_not_contiguous_with_the_partition_is_not_applied(tmp_path: Path) -> None:
    """A followed entry whose read started elsewhere than the partition stands is counted
    as stale and changes nothing (it could be applied twice otherwise)."""
    store = FileStore(tmp_path)
    await store.open()
    writer = _writer(store)
    await writer.adopt(ALL)
    event = decode(ev("call_queued", T0, call_id="c1", queue="q", id="e1"))
    writer.admit_logged(Logged(ALL, "s", "1-0", [event], T0, since=""))
    writer.admit_logged(Logged(ALL, "s", "1-0", [event], T0, since=""))  # read twice
    writer.admit_logged(Logged(ALL, "s", "3-0", [event], T0, since="2-0"))  # a gap
    [proc] = writer.processors()
    assert proc.counters["events"] == 1 and proc.counters["duplicates"] == 0
    assert writer.stale_entries_total == 2
    assert writer.cursors() == {ALL: {"s": "1-0"}}
    await store.close()


async def test_invalid_items_of_logged_rounds_are_counted_again_on_recovery(
    tmp_path: Path,
) -> None:
    """A round's rejections are in the log: a recovery without checkpoint counts them again."""
    store = FileStore(tmp_path)
    await store.open()
    writer = _writer(store, FloorProcessor(config(), live=True))
    writer.proc.tick(T0 + 10)  # the round is admitted at this clock, and so replayed
    batch = _queued(1, T0)
    batch.rejected = {"missing_field": 2, "bad_ts": 1}
    await writer._round([batch])
    assert writer.proc.counters["rejected"] == 3
    await store.close()
    again = FileStore(tmp_path)
    await again.open()
    recovered = _writer(again, FloorProcessor(config(), live=True))
    await recovered.recover((ALL,))
    assert recovered.proc.counters["rejected"] == 3
    assert recovered.proc.counters["events"] == 1
    await again.close()


async def test_adopt_waits_for_the_round_in_progress(tmp_path: Path) -> None:
    """With the writer running, adopt() runs between rounds and returns once it is live."""
    store = FileStore(tmp_path)
    await store.open()
    writer = _writer(store)
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.adopt(ALL), 5)
        assert writer.owned == {ALL} and writer.adopted_total == 1
        await asyncio.wait_for(writer.drop(ALL, checkpoint=False), 5)
        assert writer.owned == frozenset()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await store.close()

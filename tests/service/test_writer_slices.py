"""The writer gives readers a turn while it admits a long log entry (issue 10: a
backfill read back from a followed store, every event late, must not stall
``/healthz``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from time import perf_counter

import pytest
from helpers import T0, config, decode, ev

from callfloor.bus import ChangeBus
from callfloor.ingest.backlog import Backlog
from callfloor.service import writer as writer_module
from callfloor.service.stats import IngestStats
from callfloor.service.writer import Writer
from callfloor.store.base import ALL, Logged
from callfloor.store.file import FileStore


async def test_a_long_log_entry_is_admitted_in_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A followed entry of 1,000 late events is admitted 64 at a time, other tasks running
    between the slices, and every event is applied."""
    store = FileStore(tmp_path)
    await store.open()
    writer = Writer(
        None,
        stats=IngestStats(),
        backlog=Backlog(10_000),
        store=store,
        bus=ChangeBus(),
        watermark=lambda: T0 + 100,
        tick_s=1.0,
        config=config(),
    )
    await writer.adopt(ALL)
    monkeypatch.setattr(writer_module, "SLICE_S", 0.0)  # a turn after every slice
    events = [
        decode(ev("call_queued", T0 + i * 0.01, call_id=f"c{i}", queue="q", id=f"e{i}"))
        for i in range(1000)
    ]
    turns = 0
    done = False

    async def reader() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    before = turns
    writer._slice_started = perf_counter()
    await writer._work_on([Logged(ALL, "s", "1-0", events, T0 + 50, since="")])
    done = True
    await task
    assert turns - before >= 1000 // 64
    [proc] = writer.processors()
    assert proc.counters["events"] == 1000
    assert writer.backlog.pending == 0
    await store.close()

"""The file store: durable appends, replay after a checkpoint, torn tails, one owner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import T0, decode, ev

from callfloor.events import Event
from callfloor.ingest.source import Batch
from callfloor.store.base import ALL, StoreError
from callfloor.store.file import FileStore


def _events(n: int, start: int = 0) -> list[Event]:
    return [
        decode(ev("call_queued", T0 + i, call_id=f"c{i}", queue="q", id=f"e{i}"))
        for i in range(start, start + n)
    ]


async def _replayed(store: FileStore, positions: dict[str, str]) -> list[tuple[float, list[str]]]:
    return [
        (logged.at, [e.id or "" for e in logged.events])
        async for logged in store.replay(ALL, positions)
    ]


async def test_appended_rounds_replay_in_order_with_their_clock(tmp_path: Path) -> None:
    """Every appended round comes back, in order, with the clock it was admitted at."""
    store = FileStore(tmp_path)
    await store.open()
    await store.append([Batch(_events(2))], T0)
    await store.append([Batch(_events(1, 2)), Batch(_events(1, 3))], T0 + 5)
    await store.close()
    again = FileStore(tmp_path)
    await again.open()
    assert await _replayed(again, {}) == [(T0, ["e0", "e1"]), (T0 + 5, ["e2", "e3"])]


async def test_replay_starts_after_the_checkpointed_position(tmp_path: Path) -> None:
    """A checkpoint's position skips what it covers; its blob comes back from load()."""
    store = FileStore(tmp_path)
    await store.open()
    first = await store.append([Batch(_events(2))], T0)
    await store.append([Batch(_events(1, 2))], T0 + 1)
    await store.save(ALL, b"state", first)
    assert await store.load(ALL) == b"state"
    assert await _replayed(store, dict(first)) == [(T0 + 1, ["e2"])]


async def test_a_torn_last_record_is_cut_off_and_appends_go_on(tmp_path: Path) -> None:
    """A crash mid-write leaves a partial record at the end: recovery drops it (it was
    never acknowledged) and later appends follow the good records."""
    store = FileStore(tmp_path)
    await store.open()
    await store.append([Batch(_events(1))], T0)
    await store.close()
    [segment] = (tmp_path / "log").glob("*.seg")
    with open(segment, "ab") as fh:
        fh.write(b"\x00\x00\x10\x00partial")  # a header promising 4,096 bytes, then a crash
    again = FileStore(tmp_path)
    await again.open()
    assert await _replayed(again, {}) == [(T0, ["e0"])]
    await again.append([Batch(_events(1, 1))], T0 + 1)
    assert await _replayed(again, {}) == [(T0, ["e0"]), (T0 + 1, ["e1"])]


async def test_a_damaged_record_before_the_end_stops_recovery_naming_it(tmp_path: Path) -> None:
    """Corruption that is not a torn tail is refused with what to do, never skipped."""
    store = FileStore(tmp_path)
    await store.open()
    await store.append([Batch(_events(1))], T0)
    await store.append([Batch(_events(1, 1))], T0 + 1)
    await store.close()
    [segment] = (tmp_path / "log").glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[12] ^= 0xFF  # a byte inside the first record's payload
    segment.write_bytes(bytes(data))
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError, match=r"damaged.*move the store directory aside"):
        await _replayed(again, {})


async def test_a_second_process_cannot_use_the_same_directory(tmp_path: Path) -> None:
    """The directory's lock keeps a second store out, with a message saying why."""
    first = FileStore(tmp_path)
    await first.open()
    pid = os.fork()
    if pid == 0:  # another process: the lock is per open file description
        import asyncio

        second = FileStore(tmp_path)
        try:
            asyncio.run(second.open())
        except StoreError as exc:
            os._exit(3 if "in use by another callfloor" in str(exc) else 4)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    await first.close()


async def test_a_checkpoint_drops_the_segments_it_covers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments wholly before a checkpoint's position are deleted (the log stays bounded)."""
    monkeypatch.setattr("callfloor.store.file.SEGMENT_BYTES", 200)
    store = FileStore(tmp_path)
    await store.open()
    positions = {}
    for i in range(6):
        positions = dict(await store.append([Batch(_events(2, 2 * i))], T0 + i))
    assert len(list((tmp_path / "log").glob("*.seg"))) > 2
    await store.save(ALL, b"state", positions)
    assert len(list((tmp_path / "log").glob("*.seg"))) == 1
    assert await _replayed(store, positions) == []


async def test_a_zero_filled_tail_is_cut_off_as_a_torn_write(tmp_path: Path) -> None:
    """Zeros after the last record (a file system's view of a crash) are a torn tail, not damage."""
    store = FileStore(tmp_path)
    await store.open()
    await store.append([Batch(_events(2))], T0)
    await store.close()
    [segment] = (tmp_path / "log").glob("*.seg")
    with open(segment, "ab") as fh:
        fh.write(b"\0" * 64)
    again = FileStore(tmp_path)
    await again.open()
    assert await _replayed(again, {}) == [(T0, ["e0", "e1"])]
    assert not segment.read_bytes().endswith(b"\0" * 8)

"""The file store: durable appends, replay after a checkpoint, torn tails, one owner."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import struct
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from fixtures.disk import file_size_limit
from helpers import T0, decode, ev

from callfloor.events import Event
from callfloor.ingest.source import Batch
from callfloor.store.base import ALL, RECORD_DECODER, StoreError
from callfloor.store.file import SEGMENT_HEADER_SIZE, FileStore


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


async def test_rejections_and_their_ids_replay_and_older_records_still_decode(
    tmp_path: Path,
) -> None:
    """A round's rejected counts and the ids of its identified rejections (a file's
    lines) come back; a record written before ids existed decodes without them."""
    store = FileStore(tmp_path)
    await store.open()
    batch = Batch([], rejected={"invalid_ts": 2}, rejected_ids=[("ql:rejected-0-1", "invalid_ts")])
    await store.append([batch], T0)
    await store.close()
    again = FileStore(tmp_path)
    await again.open()
    logged = [x async for x in again.replay(ALL, {})]
    assert [(x.rejected, x.rejected_ids) for x in logged] == [
        ({"invalid_ts": 2}, ["ql:rejected-0-1"])
    ]
    old = msgspec.msgpack.encode([T0, [], {"invalid_ts": 1}])
    assert RECORD_DECODER.decode(old).rejected_ids == []


async def test_replay_starts_after_the_checkpointed_position(tmp_path: Path) -> None:
    """A checkpoint's position skips what it covers; its blob comes back from load()."""
    store = FileStore(tmp_path)
    await store.open()
    first = await store.append([Batch(_events(2))], T0)
    await store.append([Batch(_events(1, 2))], T0 + 1)
    await store.save(ALL, b"state", first, previous={})
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
    data[SEGMENT_HEADER_SIZE + 12] ^= 0xFF  # a byte inside the first record's payload
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


async def test_a_checkpoint_drops_the_segments_the_previous_one_covers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments wholly before the previous checkpoint's position are deleted (the log
    stays bounded); the segments after it stay, so either checkpoint can restore."""
    monkeypatch.setattr("callfloor.store.file.SEGMENT_BYTES", 200)
    store = FileStore(tmp_path)
    await store.open()
    positions = [dict(await store.append([Batch(_events(2, 2 * i))], T0 + i)) for i in range(6)]
    assert len(list((tmp_path / "log").glob("*.seg"))) == 6
    await store.save(ALL, b"state-1", positions[2], previous={})
    assert len(list((tmp_path / "log").glob("*.seg"))) == 6  # nothing before it is kept
    await store.save(ALL, b"state-2", positions[5], previous=positions[2])
    assert [p.name for p in sorted((tmp_path / "log").glob("*.seg"))] == [
        f"0000000{n}.seg" for n in (3, 4, 5, 6)
    ]
    assert (await store.load(ALL), await store.load(ALL, 1)) == (b"state-2", b"state-1")
    assert [ids for _, ids in await _replayed(store, positions[2])] == [
        ["e6", "e7"],
        ["e8", "e9"],
        ["e10", "e11"],
    ]
    assert await _replayed(store, positions[5]) == []


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


# ---------------------------------------------------------------- damage with records after it


def _damage_second_length(segment: Path) -> tuple[int, int]:
    """Make the 2nd record's length claim more than the file holds; its and the 3rd's offsets."""
    data = bytearray(segment.read_bytes())
    second = SEGMENT_HEADER_SIZE + 8 + struct.unpack_from(">I", data, SEGMENT_HEADER_SIZE)[0]
    third = second + 8 + struct.unpack_from(">I", data, second)[0]
    struct.pack_into(">I", data, second, len(data))
    segment.write_bytes(bytes(data))
    return second, third


async def _three_rounds(path: Path) -> Path:
    store = FileStore(path)
    await store.open()
    for i in range(3):
        await store.append([Batch(_events(1, i))], T0 + i)
    await store.close()
    [segment] = (path / "log").glob("*.seg")
    return segment


async def test_a_damaged_length_with_records_after_it_leaves_the_segment_as_it_was(
    tmp_path: Path,
) -> None:
    """A length running past the end with a valid record after it is refused, and the
    segment is not truncated (acknowledged records are never cut off)."""
    segment = await _three_rounds(tmp_path)
    _damage_second_length(segment)
    damaged = segment.read_bytes()
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError):
        await _replayed(again, {})
    await again.close()
    assert segment.read_bytes() == damaged


async def test_the_refusal_names_the_file_the_damage_and_the_valid_record_after_it(
    tmp_path: Path,
) -> None:
    """The error says which file, at which byte the damage is, and where the next valid
    record starts."""
    segment = await _three_rounds(tmp_path)
    second, third = _damage_second_length(segment)
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError) as refused:
        await _replayed(again, {})
    await again.close()
    message = str(refused.value)
    assert str(segment) in message
    assert f"at byte {second} (with a valid record at byte {third} after it)" in message


async def test_garbage_after_the_last_record_is_cut_off_as_a_torn_write(tmp_path: Path) -> None:
    """Bytes after the last record that hold no valid record (a crash mid-write) are cut
    off and the good records replay."""
    store = FileStore(tmp_path)
    await store.open()
    await store.append([Batch(_events(2))], T0)
    end = (await store.append([Batch(_events(1, 2))], T0 + 1))["log"]
    await store.close()
    [segment] = (tmp_path / "log").glob("*.seg")
    with open(segment, "ab") as fh:
        fh.write(bytes(range(1, 256)) * 8)  # no zero byte: never a plausible length
    again = FileStore(tmp_path)
    await again.open()
    assert await _replayed(again, {}) == [(T0, ["e0", "e1"]), (T0 + 1, ["e2"])]
    assert segment.stat().st_size == int(end.split(":")[1])


async def test_a_torn_record_followed_by_zeros_and_a_valid_record_is_refused(
    tmp_path: Path,
) -> None:
    """A valid record found after a run of zeros that follows damage still stops the
    start: zeros are skipped over, not taken for the end."""
    segment = await _three_rounds(tmp_path)
    data = bytearray(segment.read_bytes())
    second = SEGMENT_HEADER_SIZE + 8 + struct.unpack_from(">I", data, SEGMENT_HEADER_SIZE)[0]
    third = second + 8 + struct.unpack_from(">I", data, second)[0]
    data[second:third] = bytes(third - second + 4096)  # the 2nd record zeroed, and more
    segment.write_bytes(bytes(data))
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError, match=f"valid record at byte {third + 4096}"):
        await _replayed(again, {})
    await again.close()


# ---------------------------------------------------------------- checkpoint beyond the log


async def test_a_checkpoint_in_a_segment_the_log_no_longer_holds_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint position in a deleted segment is refused naming the position and
    where the log ends, instead of replaying the later segments with a hole before them."""
    monkeypatch.setattr("callfloor.store.file.SEGMENT_BYTES", 200)
    store = FileStore(tmp_path)
    await store.open()
    positions = [dict(await store.append([Batch(_events(2, 2 * i))], T0 + i)) for i in range(6)]
    await store.close()
    checkpointed = positions[0]["log"]
    (tmp_path / "log" / "00000001.seg").unlink()
    last = sorted((tmp_path / "log").glob("*.seg"))[-1]
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError) as refused:
        await _replayed(again, dict(positions[0]))
    await again.close()
    message = str(refused.value)
    assert checkpointed in message
    assert f"the log ends at {int(last.stem)}:{last.stat().st_size}" in message


async def test_a_checkpoint_past_the_end_names_the_position_and_the_end(tmp_path: Path) -> None:
    """The refusal of a position beyond the segment's end says both, and what happened."""
    store = FileStore(tmp_path)
    await store.open()
    end = (await store.append([Batch(_events(1))], T0))["log"]
    await store.close()
    beyond = f"1:{int(end.split(':')[1]) + 1}"
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError) as refused:
        await _replayed(again, {"log": beyond})
    await again.close()
    assert f"position {beyond} is past the end" in str(refused.value)
    assert f"the log ends at {end}" in str(refused.value)


async def test_a_log_that_starts_after_segment_one_without_a_checkpoint_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments deleted by a checkpoint, then the checkpoint lost: replaying from the
    start is refused instead of serving the later segments alone."""
    monkeypatch.setattr("callfloor.store.file.SEGMENT_BYTES", 200)
    store = FileStore(tmp_path)
    await store.open()
    positions = {}
    for i in range(6):
        positions = dict(await store.append([Batch(_events(2, 2 * i))], T0 + i))
    await store.save(ALL, b"state", positions, previous=positions)
    await store.close()
    (tmp_path / "checkpoint").unlink()
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError, match="no checkpoint covering the segments before it"):
        await _replayed(again, {})
    await again.close()


# ---------------------------------------------------------------- failed appends


def _failing(monkeypatch: pytest.MonkeyPatch, name: str, times: int) -> None:
    """The next ``times`` calls of ``os.<name>`` fail with EIO (a disk error), the later
    ones work."""
    real = getattr(os, name)
    left = [times]

    def call(*args: int) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise OSError(errno.EIO, "Input/output error")
        real(*args)

    monkeypatch.setattr(os, name, call)


async def test_a_short_write_raises_a_store_error_naming_the_file_and_offset(
    tmp_path: Path,
) -> None:
    """A full disk fails the append with a StoreError saying where, and the segment is
    back at the last good record."""
    store = FileStore(tmp_path)
    await store.open()
    size = int((await store.append([Batch(_events(1))], T0))["log"].split(":")[1])
    segment = tmp_path / "log" / "00000001.seg"
    with file_size_limit(size + 64), pytest.raises(StoreError) as failed:
        await store.append([Batch(_events(50, 1))], T0 + 1)
    await store.close()
    assert f"cannot append to {segment} at byte {size}" in str(failed.value)
    assert segment.stat().st_size == size


async def test_an_fsync_error_cuts_the_record_off_and_the_retry_follows_the_good_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record whose fsync failed is truncated off, so the retried round is logged once,
    right after the previous record."""
    store = FileStore(tmp_path)
    await store.open()
    await store.append([Batch(_events(1))], T0)
    _failing(monkeypatch, "fsync", 1)
    with pytest.raises(StoreError, match="Input/output error"):
        await store.append([Batch(_events(1, 1))], T0 + 1)
    await store.append([Batch(_events(1, 1))], T0 + 1)
    await store.close()
    again = FileStore(tmp_path)
    await again.open()
    assert await _replayed(again, {}) == [(T0, ["e0"]), (T0 + 1, ["e1"])]


async def test_a_failed_append_that_cannot_be_cut_back_refuses_every_later_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the cut-back fails too, later appends are refused (none may land after the
    partial record) even once the disk works again."""
    store = FileStore(tmp_path)
    await store.open()
    await store.append([Batch(_events(1))], T0)
    _failing(monkeypatch, "fsync", 2)  # the record's fsync, then the cut-back's
    with pytest.raises(StoreError):
        await store.append([Batch(_events(1, 1))], T0 + 1)
    with pytest.raises(StoreError, match="appends are refused; restart callfloor"):
        await store.append([Batch(_events(1, 2))], T0 + 2)
    await store.close()


async def test_after_a_refused_cut_back_a_restart_recovers_the_acknowledged_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart after a store that could not cut a failed record back replays what was
    acknowledged and appends again."""
    store = FileStore(tmp_path)
    await store.open()
    size = int((await store.append([Batch(_events(1))], T0))["log"].split(":")[1])
    _failing(monkeypatch, "ftruncate", 1)
    with file_size_limit(size + 64), pytest.raises(StoreError):
        await store.append([Batch(_events(50, 1))], T0 + 1)
    await store.close()
    assert (tmp_path / "log" / "00000001.seg").stat().st_size == size + 64  # kept
    again = FileStore(tmp_path)
    await again.open()
    assert await _replayed(again, {}) == [(T0, ["e0"])]
    await again.append([Batch(_events(1, 1))], T0 + 1)
    assert await _replayed(again, {}) == [(T0, ["e0"]), (T0 + 1, ["e1"])]
    await again.close()


async def test_close_waits_for_an_append_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A close while an append's fsync is still running in its thread (a stop that gave up
    waiting) waits for it: the descriptor is never closed under the write."""
    slow = threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        slow.set()
        time.sleep(0.3)
        real_fsync(fd)

    store = FileStore(tmp_path)
    await store.open()
    monkeypatch.setattr(os, "fsync", slow_fsync)
    appending = asyncio.ensure_future(store.append([Batch(_events(1))], T0))
    await asyncio.to_thread(slow.wait, 5.0)
    await store.close()
    await asyncio.wait_for(appending, 5.0)  # landed: no error from a closed descriptor
    monkeypatch.setattr(os, "fsync", real_fsync)
    again = FileStore(tmp_path)
    await again.open()
    assert await _replayed(again, {}) == [(T0, ["e0"])]


async def test_a_file_store_reports_itself_up_with_nothing_counted(tmp_path: Path) -> None:
    """A file store's health is up with no counters: its failures are raised by the call."""
    store = FileStore(tmp_path)
    await store.open()
    try:
        await store.append([Batch([ev("agent_state", T0, agent="a", state="available")])], T0)
        health = store.health()
        assert health.up and health.last_error is None and dict(health.errors_by_op) == {}
    finally:
        await store.close()


# ---------------------------------------------------------------- gaps and truncations


async def _segments(
    path: Path, monkeypatch: pytest.MonkeyPatch, rounds: int = 6, segment_bytes: int = 200
) -> list[Path]:
    """A log of several small segments (two events a round), closed; its segment files."""
    monkeypatch.setattr("callfloor.store.file.SEGMENT_BYTES", segment_bytes)
    store = FileStore(path)
    await store.open()
    for i in range(rounds):
        await store.append([Batch(_events(2, 2 * i))], T0 + i)
    await store.close()
    return sorted((path / "log").glob("*.seg"))


async def test_a_missing_middle_segment_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """00000002.seg gone while 00000003.seg is there: the start is refused, naming the
    missing segment and what to do, instead of replaying around the hole."""
    segments = await _segments(tmp_path, monkeypatch)
    assert len(segments) >= 3
    segments[1].unlink()
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError) as refused:
        await _replayed(again, {})
    await again.close()
    message = str(refused.value)
    assert "00000002.seg" in message and "missing" in message
    assert "restore" in message


async def test_a_segment_cut_at_a_record_boundary_before_the_last_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment that is not the last one losing its last record (cut exactly between two
    records, so every record left is valid) is refused: more than the log's last record
    is gone."""
    segments = await _segments(tmp_path, monkeypatch, rounds=9, segment_bytes=500)
    first = segments[0]
    data = first.read_bytes()
    ends = [end async for end in _record_ends(tmp_path, first)]
    assert len(ends) >= 2
    first.write_bytes(data[: ends[-2]])
    again = FileStore(tmp_path)
    await again.open()
    with pytest.raises(StoreError) as refused:
        await _replayed(again, {})
    await again.close()
    assert first.name in str(refused.value)


async def _record_ends(path: Path, segment: Path) -> AsyncIterator[int]:
    """The offsets just after each record of ``segment`` (read with a fresh store)."""
    store = FileStore(path)
    await store.open()
    try:
        async for logged in store.replay(ALL, {}):
            seg, offset = logged.position.split(":")
            if int(seg) == int(segment.stem):
                yield int(offset)
    finally:
        await store.close()


async def test_a_torn_last_record_is_counted_and_logged_at_error_with_its_size(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cutting off a torn last record is never silent: counted in the store's health and
    logged at ERROR with the file, the offset and how many bytes went."""
    store = FileStore(tmp_path)
    await store.open()
    end = (await store.append([Batch(_events(1))], T0))["log"]
    await store.close()
    [segment] = (tmp_path / "log").glob("*.seg")
    with open(segment, "ab") as fh:
        fh.write(b"\x00\x00\x10\x00partial")  # 11 bytes of a record that never finished
    again = FileStore(tmp_path)
    await again.open()
    with caplog.at_level(logging.ERROR, logger="callfloor"):
        assert await _replayed(again, {}) == [(T0, ["e0"])]
    assert again.health().torn_records == 1
    await again.close()
    [line] = [r for r in caplog.records if "torn" in r.getMessage()]
    assert line.levelno == logging.ERROR
    offset = int(end.split(":")[1])
    assert f"offset={offset}" in line.getMessage() and "size=11" in line.getMessage()

"""The tailed file source: growth, partial lines, rotation, a missing file, a saved position."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from msgspec.structs import replace

from callfloor.config import SourceConfig
from callfloor.feeds.base import FeedOptions
from callfloor.ingest.counts import SourceCounts
from callfloor.ingest.positions import PositionBook, SourcePosition
from callfloor.ingest.source import Receipt
from callfloor.ingest.tail import TailOptions, TailSource

T = 1_765_100_000
WAIT_S = 3.0


def enter(i: int) -> bytes:
    """One ENTERQUEUE line (one call_queued event, call ``c<i>``)."""
    return f"{T + i}|c{i}|q1|NONE|ENTERQUEUE||5551234|1\n".encode()


class Tail:
    """A running source whose batches are acknowledged at once; collects call ids."""

    def __init__(
        self,
        path: Path,
        book: PositionBook | None = None,
        kind: str = "queue_log",
        **options: object,
    ) -> None:
        config = SourceConfig(kind=kind, name="ql", path=str(path))
        self.counts = SourceCounts()
        self.book = book or PositionBook()
        self.source = TailSource(
            config,
            FeedOptions(),
            TailOptions(**{"poll_s": 0.005, **options}),  # type: ignore[arg-type]
            counts=self.counts,
            book=self.book,
            position_every_s=0.0,
        )
        self.calls: list[str] = []
        self.rejected: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.source:
            async for batch in self.source:
                self.calls += [str(e.call_id) for e in batch.events]  # type: ignore[attr-defined]
                for reason, n in batch.rejected.items():
                    self.rejected[reason] = self.rejected.get(reason, 0) + n
                if batch.ack is not None:
                    batch.ack(Receipt())

    async def __aenter__(self) -> Tail:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def until(self, n: int) -> list[str]:
        """The call ids once ``n`` arrived (fails after WAIT_S)."""
        async with asyncio.timeout(WAIT_S):
            while len(self.calls) < n:
                await asyncio.sleep(0.005)
        return self.calls


@contextlib.asynccontextmanager
async def tailing(path: Path, **kwargs: object) -> AsyncIterator[Tail]:
    async with Tail(path, **kwargs) as tail:  # type: ignore[arg-type]
        yield tail


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


async def test_lines_appended_while_tailing_are_applied_in_order(tmp_path: Path) -> None:
    """Lines written before and while the source runs all arrive, once, in file order."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0) + enter(1))
    async with tailing(path) as tail:
        await tail.until(2)
        append(path, enter(2) + enter(3))
        assert await tail.until(4) == ["c0", "c1", "c2", "c3"]


async def test_a_partly_written_last_line_is_read_once_complete(tmp_path: Path) -> None:
    """A line without its newline yet is neither applied nor rejected until it ends."""
    path = tmp_path / "queue_log"
    line = enter(1)
    path.write_bytes(enter(0) + line[:12])
    async with tailing(path) as tail:
        await tail.until(1)
        await asyncio.sleep(0.05)
        assert tail.calls == ["c0"] and not tail.rejected
        append(path, line[12:])
        assert await tail.until(2) == ["c0", "c1"]
        assert not tail.rejected


async def test_rename_rotation_while_tailing_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Renamed away (logrotate), the old file's late lines and the new file's all arrive."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0))
    async with tailing(path) as tail:
        await tail.until(1)
        os.rename(path, tmp_path / "queue_log.1")
        append(tmp_path / "queue_log.1", enter(1))  # Asterisk writes on until it reopens
        path.write_bytes(enter(2))
        append(path, enter(3))
        assert await tail.until(4) == ["c0", "c1", "c2", "c3"]
        await asyncio.sleep(0.05)
        assert len(tail.calls) == 4
        assert tail.counts.reconnects_total[("ql", "queue_log")] == 1


async def test_copy_truncate_rotation_reads_the_new_content_from_the_start(
    tmp_path: Path,
) -> None:
    """Copied and truncated in place, the file's new lines are read from offset 0."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0) + enter(1))
    async with tailing(path) as tail:
        await tail.until(2)
        with path.open("r+b") as f:
            f.truncate(0)
        await asyncio.sleep(0.05)
        append(path, enter(2))
        assert await tail.until(3) == ["c0", "c1", "c2"]


def rewrite(path: Path, data: bytes) -> None:
    """Copy-truncate: the same inode emptied, then written ``data`` (longer than before)."""
    with path.open("r+b") as f:
        f.truncate(0)
        f.write(data)


async def test_a_copy_truncate_that_grew_back_between_two_polls_is_read_from_the_start(
    tmp_path: Path,
) -> None:
    """Truncated and grown back past the read offset before the next poll: the new
    content's first bytes differ from those read, so it is read from 0, not from the
    old offset (which would skip its first lines and start in the middle of one)."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0) + enter(1))
    async with tailing(path, poll_s=0.3) as tail:
        await tail.until(2)
        rewrite(path, b"".join(enter(i) for i in range(10, 15)))
        assert await tail.until(7) == ["c0", "c1", "c10", "c11", "c12", "c13", "c14"]
        await asyncio.sleep(0.05)
        assert not tail.rejected
    assert tail.counts.rotations_total == {("ql", "queue_log", "rewritten"): 1}


async def test_a_file_missing_for_a_while_is_waited_for(tmp_path: Path) -> None:
    """No file at start (or for a while): the source waits and reads it once it appears."""
    path = tmp_path / "queue_log"
    async with tailing(path) as tail:
        await asyncio.sleep(0.05)
        path.write_bytes(enter(0))
        assert await tail.until(1) == ["c0"]


async def test_a_restart_goes_on_from_the_acknowledged_position(tmp_path: Path) -> None:
    """A new source given the saved positions reads only the lines after them."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0) + enter(1))
    book = PositionBook()
    async with tailing(path, book=book) as tail:
        await tail.until(2)
    saved = book.save("all")
    append(path, enter(2))
    again = PositionBook()
    again.restore("all", saved)
    async with tailing(path, book=again) as tail:
        assert await tail.until(1) == ["c2"]
        await asyncio.sleep(0.05)
        assert tail.calls == ["c2"]


async def test_a_restart_after_rotation_finishes_the_renamed_file_first(tmp_path: Path) -> None:
    """Rotated while down: the old file (found by its inode) is finished, then the new one."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0))
    book = PositionBook()
    async with tailing(path, book=book) as tail:
        await tail.until(1)
    saved = book.save("all")
    append(path, enter(1))
    os.rename(path, tmp_path / "queue_log-20261207")
    path.write_bytes(enter(2))
    again = PositionBook()
    again.restore("all", saved)
    async with tailing(path, book=again) as tail:
        assert await tail.until(2) == ["c1", "c2"]


async def test_a_copy_truncate_while_down_that_grew_back_past_the_offset_is_read_whole(
    tmp_path: Path,
) -> None:
    """Copy-truncated while down and grown back past the saved offset (same inode, size
    beyond the offset): the saved fingerprint no longer matches, the file is read from 0."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0) + enter(1))
    book = PositionBook()
    async with tailing(path, book=book) as tail:
        await tail.until(2)
    saved = book.save("all")
    inode = path.stat().st_ino
    rewrite(path, b"".join(enter(i) for i in range(10, 15)))
    assert path.stat().st_ino == inode and path.stat().st_size > saved["ql"].offset
    again = PositionBook()
    again.restore("all", saved)
    async with tailing(path, book=again) as tail:
        assert await tail.until(5) == ["c10", "c11", "c12", "c13", "c14"]
        await asyncio.sleep(0.05)
        assert not tail.rejected and len(tail.calls) == 5
    assert tail.counts.rotations_total == {("ql", "queue_log", "rewritten"): 1}


async def test_the_fingerprint_of_an_appended_file_keeps_matching(tmp_path: Path) -> None:
    """Positions saved before and past the fingerprint's length (4 KB) still match a file
    that was only appended to; a position without a fingerprint (an older checkpoint)
    is trusted as it is."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0))
    book = PositionBook()
    async with tailing(path, book=book) as tail:
        await tail.until(1)
        append(path, b"".join(enter(i) for i in range(1, 100)))  # past 4 KB
        await tail.until(100)
    saved = book.save("all")
    assert saved["ql"].head_size == 4096 < saved["ql"].offset
    append(path, enter(100))
    for position in (saved, {"ql": replace(saved["ql"], head_size=0, head_digest=b"")}):
        again = PositionBook()
        again.restore("all", position)
        async with tailing(path, book=again) as tail:
            assert await tail.until(1) == ["c100"]
            await asyncio.sleep(0.05)
            assert tail.calls == ["c100"]
        assert not tail.counts.rotations_total


def test_a_checkpointed_position_without_a_fingerprint_still_loads() -> None:
    """A ``source_positions`` entry written before the fingerprint existed decodes."""
    old = msgspec.msgpack.encode({"kind": "queue_log", "seq": 3, "inode": 7, "offset": 120})
    position = msgspec.msgpack.decode(old, type=SourcePosition)
    assert (position.offset, position.head_size, position.head_digest) == (120, 0, b"")


async def test_unmappable_lines_are_counted_and_dead_lettered_redacted(tmp_path: Path) -> None:
    """A bad line is counted by reason and written to the dead-letter file, number hidden."""
    path = tmp_path / "queue_log"
    letters = tmp_path / "dead.ndjson"
    path.write_bytes(b"notanepoch|c9|q1|NONE|ENTERQUEUE||5551234567|1\n" + enter(0))
    async with tailing(path, dead_letters=str(letters)) as tail:
        await tail.until(1)
    assert tail.rejected == {"invalid_ts": 1}
    assert tail.counts.rejected_total == {("ql", "queue_log", "invalid_ts"): 1}
    letter = json.loads(letters.read_text())
    assert letter["reason"] == "invalid_ts" and letter["line"] == 1
    assert "5551234567" not in letter["raw"]


@pytest.mark.parametrize("start", ["end"])
async def test_start_end_skips_what_was_there_without_a_saved_position(
    tmp_path: Path, start: str
) -> None:
    """``start = "end"`` with nothing saved: only lines written from now on are read."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0))
    async with tailing(path, start=start) as tail:
        await asyncio.sleep(0.05)
        append(path, enter(1))
        assert await tail.until(1) == ["c1"]


def queued(contact: str, eid: str) -> bytes:
    """An Amazon Connect contact event (EventBridge) of a call queued in ``sales``."""
    record = {
        "version": "0",
        "id": eid,
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "time": "2026-11-23T09:00:00Z",
        "detail": {
            "eventType": "QUEUED",
            "contactId": contact,
            "channel": "VOICE",
            "initiationMethod": "INBOUND",
            "queueInfo": {"queueArn": "arn:aws:connect:r:1:instance/i/queue/sales"},
        },
    }
    return json.dumps(record).encode() + b"\n"


async def test_a_connect_ndjson_file_is_tailed_like_a_queue_log(tmp_path: Path) -> None:
    """The ``connect`` kind tails NDJSON records with the same source, ids from the records."""
    path = tmp_path / "contact-events.ndjson"
    path.write_bytes(queued("k1", "b1"))
    async with tailing(path, kind="connect") as tail:
        await tail.until(1)
        append(path, queued("k2", "b2"))
        assert await tail.until(2) == ["k1", "k2"]


HEADER = b"time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n"


def csv_row(i: int) -> bytes:
    """One ENTERQUEUE row of a realtime export, local time text in Europe/London (UTC)."""
    return f"2025-12-07 09:00:{i:02d},c{i},q1,NONE,ENTERQUEUE,,5551234,1,,\n".encode()


async def test_a_csv_export_is_tailed_and_a_rotated_one_starts_with_its_header(
    tmp_path: Path,
) -> None:
    """The header is read once per file: a new file after rotation has its own header."""
    path = tmp_path / "queue_log.csv"
    path.write_bytes(HEADER + csv_row(0))
    async with tailing(path, kind="queue_log_csv") as tail:
        await tail.until(1)
        os.rename(path, tmp_path / "queue_log.csv.1")
        path.write_bytes(HEADER + csv_row(1))
        assert await tail.until(2) == ["c0", "c1"]
        await asyncio.sleep(0.05)
        assert not tail.rejected


async def test_a_mapper_state_it_cannot_read_leaves_the_position_standing(
    tmp_path: Path,
) -> None:
    """A saved mapper state of another version is dropped, not fatal: reading goes on."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0) + enter(1))
    book = PositionBook()
    async with tailing(path, book=book) as tail:
        await tail.until(2)
    saved = {name: replace(pos, mapper=b"\xc1garbage") for name, pos in book.save("all").items()}
    append(path, enter(2))
    again = PositionBook()
    again.restore("all", saved)
    async with tailing(path, book=again) as tail:
        assert await tail.until(1) == ["c2"]


def _writer_opens(path: Path) -> None:
    """Open (and close) the FIFO's write end, freeing a reader blocked opening it."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


async def _tick(gaps: list[float]) -> None:
    """Append the event loop's gaps between 10 ms sleeps to ``gaps``, until cancelled
    (a gap far over 10 ms: something held the loop)."""
    last = time.monotonic()
    while True:
        await asyncio.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - last)
        last = now


async def test_a_fifo_at_the_path_never_blocks_the_loop_and_a_file_after_it_is_read(
    tmp_path: Path,
) -> None:
    """A FIFO where the queue_log should be (at start, or replacing it): opening it for
    reading would wait for a writer with the whole event loop (the service's HTTP, its
    other sources). The source waits for a regular file as for a missing one."""
    path = tmp_path / "queue_log"
    os.mkfifo(path)
    loop = asyncio.get_running_loop()
    # Should the source block in open(), a writer frees it after 2 s (else the test hangs).
    loop.run_in_executor(None, lambda: (time.sleep(2.0), _writer_opens(path)))
    gaps: list[float] = []
    ticking = asyncio.create_task(_tick(gaps))
    try:
        async with tailing(path) as tail:
            await asyncio.sleep(0.3)
            os.unlink(path)
            path.write_bytes(enter(0))
            assert await tail.until(1) == ["c0"]
            os.rename(path, tmp_path / "queue_log.1")
            os.mkfifo(path)
            await asyncio.sleep(0.3)
            os.unlink(path)
            path.write_bytes(enter(1))
            assert await tail.until(2) == ["c0", "c1"]
    finally:
        ticking.cancel()
    assert max(gaps) < 1.0, f"the event loop stood still for {max(gaps):.2f} s"


async def test_a_huge_line_without_its_newline_never_blocks_the_loop(tmp_path: Path) -> None:
    """64 MB with no newline (a binary file, a runaway writer): the source keeps reading,
    waiting for the newline, but gives the event loop its turn between reads (it once
    read the whole file in one go, the service deaf all the while); the lines after it
    still arrive. Over max_line_bytes (1 MiB), it is a line_too_long rejection."""
    path = tmp_path / "queue_log"
    path.write_bytes(enter(0) + b"x" * (64 << 20))
    gaps: list[float] = []
    ticking = asyncio.create_task(_tick(gaps))
    try:
        async with tailing(path) as tail:
            await tail.until(1)
            async with asyncio.timeout(60):
                while tail.source._splitter.read_to < (path.stat().st_size):
                    await asyncio.sleep(0.05)
            reading = max(gaps)
            append(path, b"\n" + enter(1))
            async with asyncio.timeout(60):
                while len(tail.calls) < 2:
                    await asyncio.sleep(0.05)
            assert tail.calls == ["c0", "c1"]
    finally:
        ticking.cancel()
    assert tail.rejected == {"line_too_long": 1}
    assert reading < 1.0, f"the event loop stood still for {reading:.2f} s while reading"


async def test_a_restart_in_the_middle_of_a_long_line_skips_it_whole(tmp_path: Path) -> None:
    """A line over max_line_bytes, still being written when callfloor stops: the saved
    position is the line's start, so the next run skips the whole line (its end is no
    line of its own) and reads the lines after it; the rejection is counted once."""
    path = tmp_path / "queue_log"
    letters = tmp_path / "dead.ndjson"
    path.write_bytes(enter(0) + b"1|c|q|NONE|" + b"x" * 3000)
    book = PositionBook()
    async with tailing(path, book=book, max_line_bytes=1024, dead_letters=str(letters)) as tail:
        await tail.until(1)
        async with asyncio.timeout(WAIT_S):
            while tail.source._splitter.read_to < path.stat().st_size:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert tail.rejected == {}
    saved = book.save("all")
    assert saved["ql"].offset == len(enter(0))
    append(path, b"|" + b"y" * 3000 + b"|ENTERQUEUE||5551234|1\n" + enter(1))
    again = PositionBook()
    again.restore("all", saved)
    async with tailing(path, book=again, max_line_bytes=1024, dead_letters=str(letters)) as tail:
        assert await tail.until(1) == ["c1"]
        await asyncio.sleep(0.05)
        assert tail.calls == ["c1"]
    assert tail.rejected == {"line_too_long": 1}
    (letter,) = [json.loads(x) for x in letters.read_text().splitlines()]
    assert letter["reason"] == "line_too_long" and letter["line"] == 2
    assert letter["raw_size"] == 11 + 3000 + 1 + 3000 + 22 and letter["position"] == len(enter(0))


async def test_dead_letters_keep_a_bounded_prefix_with_size_and_digest(tmp_path: Path) -> None:
    """A 600 KB unmappable line (under max_line_bytes) and a 3 MB one (over it): each
    dead letter keeps 4 KiB of the line, redacted, with its size and SHA-256."""
    path = tmp_path / "queue_log"
    letters = tmp_path / "dead.ndjson"
    bad = b"notanepoch|c9|q1|NONE|ENTERQUEUE||5551234567|" + b"z" * 600_000
    huge = b"1|c|q|NONE|ENTERQUEUE||5557654321|" + b"h" * (3 << 20)
    path.write_bytes(bad + b"\n" + huge + b"\n" + enter(0))
    async with tailing(path, dead_letters=str(letters)) as tail:
        await tail.until(1)
    assert tail.rejected == {"invalid_ts": 1, "line_too_long": 1}
    found = {x["reason"]: x for x in map(json.loads, letters.read_text().splitlines())}
    # The digest of a line held whole is of its redacted text (the number not in it);
    # of a line skipped, of the line as read (megabytes of it never kept).
    held = bad.replace(b"5551234567", b"[redacted]")
    for reason, line, hashed in (("invalid_ts", bad, held), ("line_too_long", huge, huge)):
        letter = found[reason]
        assert len(letter["raw"].encode()) <= 4096
        assert letter["raw_size"] == len(line) and letter["raw_truncated"] is True
        assert letter["raw_sha256"] == hashlib.sha256(hashed).hexdigest()
        assert "555" not in letter["raw"]
    assert letters.stat().st_size < 20_000

"""Lines over max_line_bytes: skipped without being held, the lines after them read as
usual; waiting partial lines cost linear time; rejections keep a bounded prefix."""

from __future__ import annotations

import hashlib
import time
import tracemalloc

import pytest

from callfloor.feeds.base import (
    RAW_KEEP,
    FeedOptions,
    LineSplitter,
    Rejected,
    bound_raw,
    long_rejection,
)
from callfloor.feeds.queue_log import QueueLogMapper
from callfloor.feeds.stream import map_chunks

T = 1_765_100_000


def enter(i: int) -> bytes:
    return f"{T + i}|c{i}|q1|NONE|ENTERQUEUE||5551234|1\n".encode()


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 300, 5000, 1 << 20])
def test_a_line_over_the_limit_is_skipped_and_the_next_lines_follow(size: int) -> None:
    """However the bytes arrive, a line over max_line comes out as a LongLine (offset,
    number, size, SHA-256, first bytes) and the lines around it as lines, at their
    offsets and numbers."""
    long = b"9|" + b"x" * 9_000
    data = enter(0) + long + b"\n" + enter(1) + enter(2)
    splitter = LineSplitter(max_line=256)
    lines: list[bytes] = []
    offsets: list[int] = []
    numbers: list[int] = []
    found = []
    for piece in pieces(data, size):
        got = splitter.push(piece)
        lines += got[0]
        offsets += got[1]
        numbers += got[2]
        found += splitter.take_long()
    first = len(enter(0))
    assert lines == [enter(0)[:-1], enter(1)[:-1], enter(2)[:-1]]
    assert offsets == [0, first + len(long) + 1, first + len(long) + 1 + len(enter(1))]
    assert numbers == [1, 3, 4]
    assert len(found) == 1
    (line,) = found
    assert (line.offset, line.number, line.size, line.ended) == (first, 2, len(long), True)
    assert line.sha256 == hashlib.sha256(long).hexdigest()
    assert line.prefix == long[:RAW_KEEP]
    assert splitter.offset == len(data) == splitter.read_to
    assert splitter.tail() is None and splitter.take_long(final=True) == []


def test_while_a_line_is_skipped_the_offset_stays_at_its_start() -> None:
    """A position saved mid-skip points at the long line's start (a restart skips it
    whole), and at the end of input it is a LongLine that did not end."""
    splitter = LineSplitter(max_line=256)
    splitter.push(enter(0) + b"y" * 1000)
    assert splitter.offset == len(enter(0))
    assert splitter.read_to == len(enter(0)) + 1000
    assert splitter.rest == b"" and splitter.tail() is None
    (line,) = splitter.take_long(final=True)
    assert (line.offset, line.number, line.size, line.ended) == (len(enter(0)), 2, 1000, False)


def test_a_line_at_the_limit_is_a_line() -> None:
    """max_line bytes (before the newline) is still a line; one more byte is not."""
    splitter = LineSplitter(max_line=300)
    exact = b"z" * 300
    lines, _, _ = splitter.push(exact + b"\n" + exact + b"zz\n")
    assert lines == [exact]
    assert [x.size for x in splitter.take_long()] == [302]


def test_skipping_a_200_mb_line_holds_a_bounded_amount_of_memory() -> None:
    """200 MB without a newline, pushed in 256 KiB reads: the splitter keeps its first
    bytes and a digest, never the line (it once held it all, copied on every read)."""
    chunk = b"x" * (256 << 10)
    splitter = LineSplitter()  # the default limit, 1 MiB
    splitter.push(enter(0))
    tracemalloc.start()
    try:
        for _ in range(800):
            splitter.push(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB while skipping"
    lines, _, _ = splitter.push(b"\n" + enter(1))
    assert lines == [enter(1)[:-1]]
    (line,) = splitter.take_long()
    assert line.size == 800 * len(chunk)


def test_a_long_partial_line_costs_linear_time() -> None:
    """A 48 MB line under the limit, arriving in 64 KiB reads: its chunks are kept and
    joined once (the waiting bytes were copied on every read: quadratic, seconds)."""
    chunk = b"w" * (64 << 10)
    splitter = LineSplitter(max_line=64 << 20)
    begin = time.perf_counter()
    for _ in range(768):
        assert splitter.push(chunk) == ([], [], [])
    lines, _, _ = splitter.push(b"\n")
    took = time.perf_counter() - begin
    assert len(lines[0]) == 768 * len(chunk)
    assert took < 1.0, f"{took:.2f} s"


def test_the_rejection_of_a_long_line_keeps_a_redacted_prefix() -> None:
    """Caller numbers in the kept prefix are redacted, and digits the cut ends in (the
    start of a number) are dropped; with caller_ids = "keep" the numbers stay."""
    prefix = b"1|c|q|NONE|ENTERQUEUE||5551234567|" + b"a" * (RAW_KEEP - 40)
    prefix += b"|" + b"555"  # cut inside a number at RAW_KEEP
    line = prefix[:RAW_KEEP] + b"1234567" + b"b" * 5000
    splitter = LineSplitter(max_line=1024)
    splitter.push(line + b"\n")
    (long,) = splitter.take_long()
    r = long_rejection(long, 0, 1024, keep_callers=False)
    assert r.reason == "line_too_long" and r.size == len(line)
    assert r.sha256 == hashlib.sha256(line).hexdigest()
    assert "5551234567" not in r.raw and "[redacted]" in r.raw
    assert not r.raw.rstrip("|").endswith("555") and r.raw.endswith("|")
    assert f"{len(line)} bytes" in r.message
    kept = long_rejection(long, 0, 1024, keep_callers=True)
    assert "5551234567" in kept.raw


def test_a_rejections_raw_text_is_cut_with_its_size_and_digest() -> None:
    """A raw text over RAW_KEEP bytes keeps its first bytes, and says the record's size
    and SHA-256; a short one is left alone; a huge message or verb is cut too."""
    record = b"q" * 100_000
    r = bound_raw(Rejected(0, 0, "malformed_line", "m" * 50_000, "q" * 100_000, "v" * 9999), record)
    assert len(r.raw.encode()) == RAW_KEEP
    assert r.size == 100_000 and r.sha256 == hashlib.sha256(record).hexdigest()
    assert len(r.message) <= 1024 and r.verb is not None and len(r.verb) <= 64
    assert bound_raw(r, record).message == r.message  # bounding twice changes nothing
    short = bound_raw(Rejected(0, 0, "malformed_line", "m", "abc"), b"abc")
    assert short.raw == "abc" and short.size is None and short.sha256 is None


@pytest.mark.parametrize("size", [1000, 1 << 20])
def test_replay_and_convert_reject_a_long_line_and_read_on(size: int) -> None:
    """Through the mapper (replay, convert): the long line is one line_too_long with its
    line number, the events of the lines after it come, and the mapper never saw it."""
    data = enter(0) + b"1|c|q|NONE|" + b"x" * 5000 + b"\n" + enter(1) + b"1|" + b"t" * 3000
    events = []
    rejected = []
    for mapped in map_chunks(QueueLogMapper(FeedOptions()), pieces(data, size), max_line=1024):
        events += [e.call_id for e in mapped.result.events]  # type: ignore[attr-defined]
        rejected += [(r.reason, mapped.line_of(r.index), r.size) for r in mapped.result.rejected]
    assert events == ["c0", "c1"]
    # The second (3,002 bytes) is kept whole in its raw text: no size and digest.
    assert rejected == [("line_too_long", 2, 5011), ("line_too_long", 4, None)]


def test_a_long_line_kept_whole_in_its_rejection_has_no_digest() -> None:
    """Under RAW_KEEP bytes (max_line_bytes may be 256) the kept prefix is the whole
    line: its SHA-256 beside the redacted text would give the number away by trying
    every number, so none is given (nor a size: nothing was cut)."""
    line = b"1|c|q|NONE|ENTERQUEUE||4915112345678|" + b"a" * 300
    splitter = LineSplitter(max_line=256)
    splitter.push(line + b"\n")
    (long,) = splitter.take_long()
    r = long_rejection(long, 0, 256, keep_callers=False)
    assert "4915112345678" not in r.raw and "[redacted]" in r.raw
    assert r.sha256 is None and r.size is None
    assert f"{len(line)} bytes" in r.message


def test_a_record_whose_redacted_text_is_kept_whole_has_no_digest() -> None:
    """A record over RAW_KEEP bytes whose redacted text fits (numbers are longer than
    [redacted]) is kept whole: no digest of the record beside it."""
    line = b"1700000000|c|q|NONE|BOGUS|" + b"|".join([b"+491511234567890"] * 250)
    assert len(line) > RAW_KEEP
    (mapped,) = map_chunks(QueueLogMapper(FeedOptions()), [line + b"\n"])
    (r,) = mapped.result.rejected
    assert "1234567890" not in r.raw and r.raw.endswith("[redacted]")
    assert r.sha256 is None and r.size is None


def test_the_caller_id_of_a_long_enterqueue_line_is_redacted_whole() -> None:
    """As in every other queue_log rejection, ENTERQUEUE's caller id goes whole, also
    when it is no run of seven digits (``+44 20 7946 0958``, a name)."""
    line = b"1700000000|c1|q1|NONE|ENTERQUEUE||+44 20 7946 0958|1|" + b"p" * 400
    (mapped,) = map_chunks(QueueLogMapper(FeedOptions()), [line + b"\n"], max_line=256)
    (r,) = mapped.result.rejected
    assert r.reason == "line_too_long"
    assert "7946" not in r.raw and "[redacted]" in r.raw


def _recover(digest: str | None, template: str, candidates: range) -> int | None:
    """The number whose line (``template`` with it for ``{}``) has ``digest``, if any."""
    for n in candidates:
        if hashlib.sha256(template.format(n).encode()).hexdigest() == digest:
            return n
    return None


def test_the_digest_of_a_cut_record_does_not_give_away_a_redacted_number() -> None:
    """A record of under RAW_KEEP bytes whose redacted text is longer (a 7-digit number
    becomes "[redacted]") is cut by a few bytes and given a digest: the digest must not
    let one who reads the letter recover the number by trying every number."""
    head = f"{T}|c1|q1|NONE|BOGUSVERB|"
    template = head + "|".join(["{0}"] * 10)
    template += "|" + "y" * (RAW_KEEP - 6 - len(template.format(5550123)))
    line = template.format(5550123).encode()
    assert len(line) < RAW_KEEP
    batches = map_chunks(QueueLogMapper(FeedOptions()), [line + b"\n"])
    (r,) = [r for b in batches for r in b.result.rejected]
    assert "5550123" not in r.raw
    assert _recover(r.sha256, template, range(5549000, 5551000)) is None


def test_the_digest_of_a_long_line_kept_whole_does_not_give_away_a_redacted_number() -> None:
    """Under a max_line_bytes below RAW_KEEP a long line is kept whole (redacted): its
    digest must not let one recover the number."""
    template = f"{T}|c1|q1|NONE|ENTERQUEUE||+44207946{{}}|1|" + "z" * 400
    line = template.format(1234).encode()
    splitter = LineSplitter(max_line=256)
    splitter.push(line + b"\n")
    (long,) = splitter.take_long()
    r = long_rejection(long, 0, 256, keep_callers=False)
    assert "1234" not in r.raw
    assert _recover(r.sha256, template, range(10000)) is None  # none is given at all


def test_a_long_enterqueue_line_loses_its_caller_id_whatever_its_length() -> None:
    """ENTERQUEUE's caller id goes whole in a rejection of a line held (a 6-digit number
    too); in the kept prefix of a line over max_line_bytes as well."""
    line = f"{T}|c1|q1|NONE|ENTERQUEUE|url|123456|1|".encode() + b"x" * 5000
    batches = map_chunks(QueueLogMapper(FeedOptions()), [line + b"\n"], max_line=1024)
    (r,) = [r for b in batches for r in b.result.rejected]
    assert r.reason == "line_too_long"
    assert "123456" not in r.raw and "|[redacted]|" in r.raw

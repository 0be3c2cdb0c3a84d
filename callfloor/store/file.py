"""The ``file://`` store: an append-only log and a checkpoint file, on one machine.

Layout under the directory::

    LOCK                 held (flock) by the one process using the directory
    log/00000001.seg     log segments: records appended, fsynced before any ack
    checkpoint           the last checkpoint, replaced atomically (write, fsync, rename)

A record is one ingest round: ``length (4 bytes) | crc32 (4 bytes) | payload``, the
payload a MessagePack :class:`Record` (the writer's watermark when it was appended, and
the events). A position is ``"segment:offset"``, just after a record. A crash can only
tear the last record of the last segment (it was never acknowledged: its fsync did not
return), so recovery cuts the log there; a bad record anywhere else is corruption and
stops the start with what to do.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import msgspec

from callfloor.ingest.source import Batch
from callfloor.store.base import ALL, RECORD_DECODER, RECORD_ENCODER, Logged, Record, StoreError

log = logging.getLogger("callfloor")

STREAM: Final = "log"
SEGMENT_BYTES: Final = 64 * 1024 * 1024
_HEADER: Final = struct.Struct(">II")


_ENCODE: Final = RECORD_ENCODER
_DECODE: Final = RECORD_DECODER


def _position(segment: int, offset: int) -> str:
    return f"{segment}:{offset}"


def _parse(position: str) -> tuple[int, int]:
    try:
        segment, offset = position.split(":")
        return int(segment), int(offset)
    except ValueError:
        raise StoreError(f"not a file log position: {position!r}") from None


class FileStore:
    """Durable on one machine (see the module docstring)."""

    applies_locally = True

    def __init__(self, path: str | Path) -> None:
        self.root = Path(path)
        self.logdir = self.root / "log"
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segment = 1
        self._offset = 0
        self.appended_bytes = 0
        self.fsyncs = 0

    # ------------------------------------------------------------------ open and close

    async def open(self) -> None:
        """Create the directory, take its lock, find the end of the log."""
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot use {self.root}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(
                f"{self.root} is in use by another callfloor process (its LOCK is held): "
                "a file store is for one process; use a redis:// store to share"
            ) from None
        self._lock_fd = fd
        segments = self._segments()
        self._segment = segments[-1] if segments else 1
        self._open_segment()

    def _segments(self) -> list[int]:
        found = []
        for entry in self.logdir.iterdir():
            if entry.suffix == ".seg" and entry.stem.isdigit():
                found.append(int(entry.stem))
        return sorted(found)

    def _file(self, segment: int) -> Path:
        return self.logdir / f"{segment:08d}.seg"

    def _open_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        path = self._file(self._segment)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._offset = os.fstat(self._fd).st_size
        _fsync_dir(self.logdir)

    async def close(self) -> None:
        """Close the log and release the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ append

    async def append(self, batches: Sequence[Batch], at: float) -> Mapping[str, str]:
        """Write the round as one record and fsync it (in a thread: fsync blocks)."""
        events = [event for batch in batches for event in batch.events]
        rejected: dict[str, int] = {}
        for batch in batches:
            for reason, n in batch.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + n
        payload = _ENCODE.encode(Record(at, events, rejected))
        return await asyncio.to_thread(self._append, payload)

    def _append(self, payload: bytes) -> Mapping[str, str]:
        if self._fd is None:
            raise StoreError("the file store is not open")
        if self._offset >= SEGMENT_BYTES:
            self._segment += 1
            self._open_segment()
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        written = os.write(self._fd, record)
        if written != len(record):
            raise StoreError(f"short write to {self._file(self._segment)}")
        os.fsync(self._fd)
        self.fsyncs += 1
        self._offset += written
        self.appended_bytes += written
        return {STREAM: _position(self._segment, self._offset)}

    # ------------------------------------------------------------------ checkpoints

    async def load(self, partition: str) -> bytes | None:
        """The checkpoint file, if any."""
        path = self.root / "checkpoint"
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def save(self, partition: str, blob: bytes, positions: Mapping[str, str]) -> None:
        """Replace the checkpoint atomically, then drop the segments it covers."""
        await asyncio.to_thread(self._save, blob, positions.get(STREAM))

    def _save(self, blob: bytes, position: str | None) -> None:
        tmp = self.root / "checkpoint.tmp"
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "checkpoint")
        _fsync_dir(self.root)
        if position is not None:
            covered, _ = _parse(position)
            for segment in self._segments():
                if segment < covered:
                    self._file(segment).unlink(missing_ok=True)

    # ------------------------------------------------------------------ recovery

    async def replay(self, partition: str, positions: Mapping[str, str]) -> AsyncIterator[Logged]:
        """The rounds logged after ``positions`` (a torn last record is cut off)."""
        if partition != ALL:
            raise StoreError(f"a file store has one partition, not {partition!r}")
        start = positions.get(STREAM)
        segment, offset = _parse(start) if start else (0, 0)
        for seg in self._segments():
            if seg < segment:
                continue
            records = await asyncio.to_thread(
                self._read, seg, offset if seg == segment else 0, seg == self._segments()[-1]
            )
            for end, record in records:
                yield Logged(
                    ALL,
                    STREAM,
                    _position(seg, end),
                    list(record.events),
                    record.at,
                    rejected=dict(record.rejected),
                )

    def _read(self, segment: int, offset: int, last: bool) -> list[tuple[int, Record]]:
        path = self._file(segment)
        data = path.read_bytes()
        out: list[tuple[int, Record]] = []
        pos = offset
        while pos < len(data):
            bad = None
            length = 0
            if pos + _HEADER.size > len(data):
                bad = "a record header cut short"
            else:
                length, crc = _HEADER.unpack_from(data, pos)
                body = data[pos + _HEADER.size : pos + _HEADER.size + length]
                if len(body) < length:
                    bad = "a record cut short"
                elif length == 0 or zlib.crc32(body) != crc:
                    bad = "a record whose checksum does not match"
            if bad is not None:
                end = pos + _HEADER.size + length
                # A crash mid-write leaves the damage at the very end (possibly
                # padded with zeros by the file system); damage with records
                # after it is not a torn write and must not be cut off.
                torn = end >= len(data) or not data[pos:].strip(b"\0")
                if last and torn:
                    # Torn by a crash mid-write: never acknowledged. Cut it off.
                    log.warning(
                        "file_store_torn_record path=%s offset=%d problem=%r (cut off)",
                        path,
                        pos,
                        bad,
                    )
                    with open(path, "r+b") as fh:
                        fh.truncate(pos)
                        os.fsync(fh.fileno())
                    if segment == self._segment:
                        self._offset = pos
                    break
                raise StoreError(
                    f"{path} has {bad} at byte {pos}: the log is damaged; move the "
                    "store directory aside and restore from a backup"
                )
            pos += _HEADER.size + length
            try:
                out.append((pos, _DECODE.decode(body)))
            except msgspec.DecodeError as exc:
                raise StoreError(f"{path}: undecodable record at byte {pos}: {exc}") from None
        return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

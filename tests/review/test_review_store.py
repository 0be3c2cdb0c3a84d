"""Review of issue 6 (durable ingest): the file and Redis stores under damage, failing
writes, odd site names and keys written by others. Each xfail is a confirmed bug."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fixtures.disk import file_size_limit
from fixtures.redis_server import RedisServer
from helpers import T0, decode, ev
from redis.asyncio import Redis

from callfloor.config import StoreConfig
from callfloor.events import Event
from callfloor.ingest.source import Batch
from callfloor.store.base import ALL, StoreError
from callfloor.store.file import SEGMENT_HEADER_SIZE, FileStore
from callfloor.store.redis import RedisStore


def _events(n: int, start: int = 0, site: str = "default") -> list[Event]:
    return [
        decode(ev("call_queued", T0 + i, call_id=f"c{i}", queue="q", id=f"e{i}") | {"site": site})
        for i in range(start, start + n)
    ]


async def _replayed_ids(store: FileStore, positions: dict[str, str]) -> list[str]:
    return [e.id or "" async for logged in store.replay(ALL, positions) for e in logged.events]


# ---------------------------------------------------------------------------- file store


async def test_a_damaged_length_in_the_middle_is_refused_not_cut_off(tmp_path: Path) -> None:
    """A record header damaged in the middle of the log stops recovery instead of
    silently truncating the acknowledged records that follow it."""
    store = FileStore(tmp_path)
    await store.open()
    await store.append([Batch(_events(1))], T0)
    await store.append([Batch(_events(1, 1))], T0 + 1)
    await store.append([Batch(_events(1, 2))], T0 + 2)
    await store.close()
    segment = tmp_path / "log" / "00000001.seg"
    data = bytearray(segment.read_bytes())
    first_len = struct.unpack_from(">I", data, SEGMENT_HEADER_SIZE)[0]
    second = SEGMENT_HEADER_SIZE + 8 + first_len
    struct.pack_into(">I", data, second, 0x7FFFFFFF)  # the 2nd record's length, damaged
    segment.write_bytes(bytes(data))
    again = FileStore(tmp_path)
    await again.open()
    try:
        with pytest.raises(StoreError):
            await _replayed_ids(again, {})
    finally:
        await again.close()


async def test_a_checkpoint_past_the_end_of_the_log_is_refused(tmp_path: Path) -> None:
    """Replaying from a position beyond the log's end (a log shorter than its checkpoint
    says) is refused as damage instead of being taken for an empty tail."""
    store = FileStore(tmp_path)
    await store.open()
    end = await store.append([Batch(_events(1))], T0)
    await store.close()
    segment, offset = end["log"].split(":")
    beyond = {"log": f"{segment}:{int(offset) + 4096}"}
    again = FileStore(tmp_path)
    await again.open()
    try:
        with pytest.raises(StoreError):
            await _replayed_ids(again, beyond)
    finally:
        await again.close()


async def test_a_short_write_then_a_retry_leaves_a_recoverable_log(tmp_path: Path) -> None:
    """An append cut short by a full disk fails, its retry succeeds, and the next start
    replays every appended round (the partial record does not poison the log)."""
    store = FileStore(tmp_path)
    await store.open()
    first = await store.append([Batch(_events(1))], T0)
    size = int(first["log"].split(":")[1])
    round_two = [Batch(_events(50, 1))]
    with file_size_limit(size + 64), pytest.raises((StoreError, OSError)):
        await store.append(round_two, T0 + 1)
    assert (tmp_path / "log" / "00000001.seg").stat().st_size == size  # partial record cut
    await store.append(round_two, T0 + 1)  # the writer's retry, once there is room
    await store.close()
    again = FileStore(tmp_path)
    await again.open()
    try:
        assert await _replayed_ids(again, {}) == [f"e{i}" for i in range(51)]
    finally:
        await again.close()


# ---------------------------------------------------------------------------- redis store


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running:
        yield running


@contextlib.asynccontextmanager
async def _redis_store(
    url: str,
    partitions: str | tuple[tuple[str, ...], ...] | None = None,
    sites: tuple[str, ...] = (),
) -> AsyncIterator[RedisStore]:
    config = StoreConfig(url=url, kind="redis", partitions=partitions)
    store = RedisStore(config, sites=sites)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_an_ungrouped_site_named_with_a_plus_is_replayed(
    redis_server: RedisServer,
) -> None:
    """With explicit groups, the events of a site named 'x+y' (in no group) come back
    when its own partition is replayed."""
    groups = (("a", "b"),)
    async with _redis_store(redis_server.url, groups, sites=("a", "b")) as store:
        await store.append([Batch(_events(2, site="x+y"))], T0)
        partition = store.partition_map.of("x+y")
        found = [e.id async for logged in store.replay(partition, {}) for e in logged.events]
    assert found == ["e0", "e1"]


async def test_a_round_partly_failed_in_exec_is_not_taken_as_landed(
    redis_server: RedisServer,
) -> None:
    """A round whose MULTI failed for one site is not reported appended on retry while
    that site's events are not in its stream."""
    async with _redis_store(redis_server.url) as store:
        other = Redis.from_url(redis_server.url)
        try:
            await other.set(store.stream_key("b"), "not a stream")  # written by someone else
            round_ = [Batch(_events(1, site="a") + _events(1, 1, site="b"))]
            with pytest.raises(StoreError):
                await store.append(round_, T0)
            with pytest.raises(StoreError):
                await store.append(round_, T0)  # the writer's retry of the same round
        finally:
            await other.aclose()

"""A damaged checkpoint is never served: the writer's recovery over real stores (a file
store in a directory, a Redis store on a real redis-server) with bits flipped in the
kept checkpoints falls back to the previous one and the longer log, or to the whole log,
and serves exactly the floor the run had; it refuses, saying what to do, only when
every kept checkpoint is damaged and the log does not reach back to its beginning."""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

import aiohttp
import msgspec
import pytest
from fixtures.redis_server import RedisServer
from helpers import T0, config, decode, ev
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from live import FakeClock, serving
from redis.asyncio import Redis
from traces import Event as EventDict
from traces import shuffle_within, simulate

from callfloor.bus import ChangeBus
from callfloor.config import Config, StoreConfig, parse_config
from callfloor.ingest.backlog import Backlog
from callfloor.ingest.source import Batch
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document
from callfloor.processors.state import HEADER_SIZE, MAGIC, SECTIONS, Section, register_section
from callfloor.service import FloorService
from callfloor.service.stats import IngestStats
from callfloor.service.writer import Writer
from callfloor.store.base import ALL, PartitionMap, Store, StoreError
from callfloor.store.file import SEGMENT_HEADER_SIZE, FileStore
from callfloor.store.redis import RedisStore

END = T0 + 7200.0  # after every event of the hand-made floors: both are compared here


class Clock:
    """The writer's watermark, moved by the test."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Run:
    """A writer over a store, fed rounds and ticked the way the service does it (for a
    shared store, the log is followed: the rounds come back from Redis)."""

    def __init__(self, store: Store, cfg: Config, start: float) -> None:
        self.store = store
        self.clock = Clock(start)
        shared = not store.applies_locally
        self.writer = Writer(
            None if shared else FloorProcessor(cfg, live=True),
            stats=IngestStats(),
            backlog=Backlog(1_000_000),
            store=store,
            bus=ChangeBus(),
            watermark=self.clock,
            tick_s=1.0,
            config=cfg,
            checkpoint_every_s=None,
            partitions=PartitionMap(StoreConfig(kind="redis")) if shared else None,
        )

    async def recover(self) -> None:
        """Restore the floor from the store (a start, or a partition's adoption)."""
        if isinstance(self.store, RedisStore):
            assert await self.store.acquire(ALL, 60.0)
            await self.writer.adopt(ALL)
        else:
            await self.writer.recover((ALL,))

    async def round(self, events: Sequence[EventDict], watermark: float) -> None:
        """One ingest round, then a tick at ``watermark``."""
        await self.writer._round([Batch([decode(e) for e in events])])
        if isinstance(self.store, RedisStore):
            while found := await self.store.read(self.writer.cursors(), 0):
                for logged in found:
                    self.writer.admit_logged(logged)
        self.clock.t = watermark
        await self.writer._tick()

    async def floor(self, end: float = END) -> bytes:
        """The document and self-metrics at ``end``, after every event (each held one
        is due then)."""
        self.clock.t = end
        await self.writer._tick()
        [proc] = self.writer.processors()
        return msgspec.json.encode([build_document(proc), proc.view.stats()])


def _flip(blob: bytes, bit: int) -> bytes:
    flipped = bytearray(blob)
    flipped[(bit // 8) % len(blob)] ^= 1 << (bit % 8)
    return bytes(flipped)


def _agents_floor() -> list[list[EventDict]]:
    """Three rounds: agent a1 and a call, agent a2, a call answered."""
    return [
        [
            ev("agent_state", T0, agent="a1", state="available", queues=["q"]),
            ev("call_queued", T0 + 1, call_id="c1", queue="q", id="e1"),
        ],
        [ev("agent_state", T0 + 10, agent="a2", state="not_ready", reason="break")],
        [ev("call_answered", T0 + 20, call_id="c1", agent="a1")],
    ]


async def _two_checkpoints(store: Store, cfg: Config, after: tuple[int, ...] = (1, 2)) -> bytes:
    """The three rounds of :func:`_agents_floor`, checkpointed after the rounds counted
    in ``after`` (by default the first and second: the third only in the log); the floor
    the run serves (the store is left closed)."""
    run = Run(store, cfg, T0 - 1)
    await store.open()
    await run.recover()
    for n, events in enumerate(_agents_floor(), start=1):
        await run.round(events, float(events[-1]["ts"]) + 5)
        if n in after:
            await run.writer.checkpoint()
    assert run.writer.checkpoints_total == len(set(after))
    served = await run.floor()
    await store.close()
    return served


# ---------------------------------------------------------------------------- file store


async def test_a_flipped_bit_in_the_newest_file_checkpoint_falls_back_to_the_previous(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bit flipped in an agent's id in the newest checkpoint (which used to restore a
    floor with another agent) is found by the checksum: counted, logged at ERROR, and
    the previous checkpoint plus the longer log restore exactly the floor of the run."""
    cfg = config()
    served = await _two_checkpoints(FileStore(tmp_path), cfg)
    newest = tmp_path / "checkpoint"
    blob = bytearray(newest.read_bytes())
    at = blob.index(b"\xa2a2")  # the MessagePack string "a2": an agent id
    blob[at + 2] ^= 0x02  # "a2" -> "a0"
    newest.write_bytes(bytes(blob))
    store = FileStore(tmp_path)
    await store.open()
    again = Run(store, cfg, T0 + 25)
    with caplog.at_level(logging.ERROR, logger="callfloor"):
        await again.recover()
    assert await again.floor() == served
    assert again.writer.checkpoint_fallbacks_total["checksum"] == 1
    [line] = [r for r in caplog.records if "checkpoint_damaged" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert "checkpoint=newest" in line.getMessage() and "SHA-256" in line.getMessage()
    # Set aside for inspection, never loaded again; the previous one is the newest kept.
    assert (tmp_path / "checkpoint.damaged").read_bytes() == bytes(blob)
    assert not newest.exists() and (tmp_path / "checkpoint.previous").exists()
    await store.close()


async def test_after_a_fallback_the_next_checkpoint_keeps_the_good_one_as_previous(
    tmp_path: Path,
) -> None:
    """The checkpoint saved after a fallback keeps the intact one it fell back to as the
    previous one (not the damaged one): a second damaged newest falls back again."""
    cfg = config()
    served = await _two_checkpoints(FileStore(tmp_path), cfg)
    newest = tmp_path / "checkpoint"
    newest.write_bytes(_flip(newest.read_bytes(), 4000))
    store = FileStore(tmp_path)
    await store.open()
    again = Run(store, cfg, T0 + 25)
    await again.recover()
    await again.writer.checkpoint()
    await store.close()
    newest.write_bytes(_flip(newest.read_bytes(), 4000))
    store = FileStore(tmp_path)
    await store.open()
    third = Run(store, cfg, T0 + 25)
    await third.recover()
    assert await third.floor() == served
    assert third.writer.checkpoint_fallbacks_total["checksum"] == 1
    await store.close()


async def test_both_file_checkpoints_damaged_with_the_whole_log_replay_it_all(
    tmp_path: Path,
) -> None:
    """With every kept checkpoint damaged but the log kept from its first segment, the
    log from its beginning restores the floor (nothing is refused that can be restored)."""
    cfg = config()
    served = await _two_checkpoints(FileStore(tmp_path), cfg)
    for name in ("checkpoint", "checkpoint.previous"):
        path = tmp_path / name
        path.write_bytes(_flip(path.read_bytes(), 12345))
    store = FileStore(tmp_path)
    await store.open()
    again = Run(store, cfg, T0 + 25)
    await again.recover()
    assert await again.floor() == served
    assert sum(again.writer.checkpoint_fallbacks_total.values()) == 2
    await store.close()


async def test_both_file_checkpoints_damaged_and_the_log_trimmed_is_refused(
    tmp_path: Path,
) -> None:
    """Every kept checkpoint damaged and the log no longer reaching back to its first
    segment: the start is refused with what was wrong and what to do, nothing served."""
    cfg = config()
    with mock.patch("callfloor.store.file.SEGMENT_BYTES", 100):  # a segment per round
        served = await _two_checkpoints(FileStore(tmp_path), cfg, after=(2, 3))
    assert served and not (tmp_path / "log" / "00000001.seg").exists()
    for name in ("checkpoint", "checkpoint.previous"):
        path = tmp_path / name
        path.write_bytes(_flip(path.read_bytes(), 999))
    store = FileStore(tmp_path)
    await store.open()
    again = Run(store, cfg, T0 + 25)
    with pytest.raises(StoreError) as refused:
        await again.recover()
    await store.close()
    message = str(refused.value)
    assert "every kept checkpoint of partition 'all' is damaged" in message
    assert "newest:" in message and "previous:" in message
    assert "restore" in message and "move the store directory aside" in message
    # Nothing was set aside: the next start says the same.
    assert (tmp_path / "checkpoint").exists() and (tmp_path / "checkpoint.previous").exists()


async def test_a_crash_between_the_two_renames_restores_from_the_previous(
    tmp_path: Path,
) -> None:
    """No newest checkpoint but a previous one (a save interrupted between its renames):
    the previous one and the log after it restore the floor, nothing counted."""
    cfg = config()
    served = await _two_checkpoints(FileStore(tmp_path), cfg)
    (tmp_path / "checkpoint").unlink()
    store = FileStore(tmp_path)
    await store.open()
    again = Run(store, cfg, T0 + 25)
    await again.recover()
    assert await again.floor() == served
    assert sum(again.writer.checkpoint_fallbacks_total.values()) == 0
    await store.close()


# ---------------------------------------------------------------------------- upgrade


async def test_a_store_of_the_landed_release_is_recovered_and_carried_on(tmp_path: Path) -> None:
    """A file store as the landed release leaves it (a format-2 checkpoint, a segment
    without a header) restores the same floor, goes on appending to that segment, and
    its next checkpoint (format 3) restores it again."""
    cfg = config()
    served = await _two_checkpoints(FileStore(tmp_path / "now"), cfg, after=(1,))
    newest = (tmp_path / "now" / "checkpoint").read_bytes()
    sections = msgspec.msgpack.decode(newest[HEADER_SIZE:])["sections"]
    segment = (tmp_path / "now" / "log" / "00000001.seg").read_bytes()
    assert segment.startswith(b"callfloor-log")
    (tmp_path / "landed" / "log").mkdir(parents=True)
    (tmp_path / "landed" / "log" / "00000001.seg").write_bytes(segment[SEGMENT_HEADER_SIZE:])
    envelope = msgspec.msgpack.decode(newest[HEADER_SIZE:])
    seg, offset = sections["log_positions"]["log"].split(":")
    landed = {  # format 2: one map, the source positions as "sources", no checksum
        "format_version": 2,
        "callfloor_version": "0.1.0",
        "config_fingerprint": envelope["config_fingerprint"],
        "tzdata_version": envelope["tzdata_version"],
        "sources": {"log": f"{seg}:{int(offset) - SEGMENT_HEADER_SIZE}"},
        "held": sections["held"],
        "floor": sections["floor"],
    }
    (tmp_path / "landed" / "checkpoint").write_bytes(
        MAGIC + (2).to_bytes(2, "big") + msgspec.msgpack.encode(landed)
    )
    store = FileStore(tmp_path / "landed")
    await store.open()
    again = Run(store, cfg, T0 + 25)
    await again.recover()
    assert await again.floor() == served
    await again.round([ev("agent_state", T0 + 30, agent="a3", state="available")], T0 + 35)
    await again.writer.checkpoint()
    after = await again.floor()
    await store.close()
    assert not (tmp_path / "landed" / "log" / "00000002.seg").exists()
    store = FileStore(tmp_path / "landed")
    await store.open()
    third = Run(store, cfg, T0 + 35)
    await third.recover()
    assert await third.floor() == after
    await store.close()


# ---------------------------------------------------------------------------- sections


class _Counted(msgspec.Struct):
    rounds: int = 0


@pytest.fixture
def counted_section() -> Iterator[Section[_Counted]]:
    section = register_section("test_counted", _Counted, _Counted)
    try:
        yield section
    finally:
        del SECTIONS[section.name]


async def test_a_feature_section_round_trips_through_the_writer_and_a_file_store(
    tmp_path: Path, counted_section: Section[_Counted]
) -> None:
    """A feature's state registered as a section (and hooked to the writer) is saved
    with every checkpoint and handed back to the feature by recovery."""
    cfg = config()
    store = FileStore(tmp_path)
    await store.open()
    run = Run(store, cfg, T0)
    state = {ALL: _Counted(7)}
    run.writer.add_section(counted_section, save=state.__getitem__, restore=state.__setitem__)
    await run.recover()
    assert state[ALL] == _Counted()  # nothing to restore: the empty value
    state[ALL] = _Counted(7)
    await run.writer.checkpoint()
    await store.close()
    store = FileStore(tmp_path)
    await store.open()
    again = Run(store, cfg, T0)
    restored: dict[str, _Counted] = {}
    again.writer.add_section(
        counted_section, save=restored.__getitem__, restore=restored.__setitem__
    )
    await again.recover()
    assert restored == {ALL: _Counted(7)}
    await store.close()


# ---------------------------------------------------------------------------- the service


async def test_the_service_counts_a_fallback_in_its_metrics(tmp_path: Path) -> None:
    """`/metrics` of a service that started from the previous checkpoint says so by
    reason, and its floor is the one the first run served."""
    cfg = parse_config({"store": {"url": f"file://{tmp_path}", "checkpoint_every": "1h"}})
    clock = FakeClock(T0 + 100)
    first = FloorService(cfg, clock=clock, host="127.0.0.1", port=0, tick_s=0.01)
    async with serving(first):
        for i, event in enumerate(_agents_floor()):
            await first.writer.submit(Batch([decode(e) for e in event]))
            await first.next_tick()
            if i < 2:
                await first.writer.checkpoint()
        await first.next_tick()
        served = build_document(first.proc)
    newest = tmp_path / "checkpoint"  # the stop's final checkpoint
    newest.write_bytes(_flip(newest.read_bytes(), 777))
    second = FloorService(cfg, clock=clock, host="127.0.0.1", port=0, tick_s=0.01)
    async with serving(second) as base, aiohttp.ClientSession() as http:
        await second.next_tick()
        async with http.get(f"{base}/metrics") as resp:
            metrics = await resp.text()
        assert build_document(second.proc) == served
    assert 'callfloor_checkpoint_fallbacks_total{reason="checksum"} 1' in metrics
    assert 'callfloor_checkpoint_fallbacks_total{reason="format"} 0' in metrics


# ---------------------------------------------------------------------------- redis store


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running:
        yield running


def _redis(url: str, member: str = "m1") -> RedisStore:
    return RedisStore(StoreConfig(url=url, kind="redis"), member=member)


async def _flip_key(url: str, key: str, bit: int) -> None:
    client = Redis.from_url(url)
    try:
        blob = await client.get(key)
        assert blob is not None, key
        await client.set(key, _flip(blob, bit))
    finally:
        await client.aclose()


async def test_a_flipped_bit_in_the_newest_redis_checkpoint_falls_back(
    redis_server: RedisServer,
) -> None:
    """A bit flipped in the partition's newest checkpoint in Redis: the previous
    checkpoint and the longer streams restore exactly the floor of the run, counted, and
    the damaged one is set aside under its own key."""
    cfg = config()
    served = await _two_checkpoints(_redis(redis_server.url), cfg)
    store = _redis(redis_server.url)
    key = store.checkpoint_key(ALL)
    await _flip_key(redis_server.url, key, 2024)
    await store.open()
    again = Run(store, cfg, T0 + 25)
    await again.recover()
    assert await again.floor() == served
    assert again.writer.checkpoint_fallbacks_total["checksum"] == 1
    assert await store.redis.exists(store.damaged_key(ALL, 0)) == 1
    assert await store.redis.exists(key) == 0
    await store.close()


async def test_both_redis_checkpoints_damaged_behind_trimmed_streams_is_refused(
    redis_server: RedisServer,
) -> None:
    """Every kept checkpoint of the partition damaged and its streams trimmed behind the
    previous one: the adoption is refused, naming both problems and what to do."""
    cfg = config()
    await _two_checkpoints(_redis(redis_server.url), cfg)
    store = _redis(redis_server.url)
    for slot in (0, 1):
        await _flip_key(redis_server.url, store.checkpoint_key(ALL, slot), 31337)
    await store.open()
    again = Run(store, cfg, T0 + 25)
    with pytest.raises(StoreError) as refused:
        await again.recover()
    await store.close()
    message = str(refused.value)
    assert "every kept checkpoint of partition 'all' is damaged" in message
    assert "was trimmed" in message and "Restore" in message


# ---------------------------------------------------------------------------- properties

NEWEST, PREVIOUS = 0, 1
_DAMAGE: dict[str, tuple[int, ...]] = {
    "none": (),
    "newest": (NEWEST,),
    "previous": (PREVIOUS,),
    "both": (NEWEST, PREVIOUS),
}
# Damaged checkpoints recovery looks at (a damaged previous one behind an intact newest
# one is not read: the next checkpoint replaces it).
_EXAMINED_BAD: dict[str, int] = {"none": 0, "newest": 1, "previous": 0, "both": 2}
_bits = st.integers(min_value=0, max_value=2**40)


@st.composite
def floors(draw: st.DrawFn, max_agents: int = 8) -> tuple[Config, list[EventDict]]:
    """A small simulated floor (one or two sites) and its events in an arrival order
    shuffled within a minute (late events, re-folded calls)."""
    seed = draw(st.integers(0, 10_000))
    sites = draw(st.integers(1, 2))
    trace = simulate(
        seed=seed,
        agents=draw(st.integers(2, max_agents)),
        queues=draw(st.integers(sites, 3)),
        sites=sites,
        hours=draw(st.sampled_from((0.25, 0.5, 1.0))),
    )
    cfg = parse_config(tomllib.loads(trace.toml), "<simulated>")
    return cfg, shuffle_within(trace.events, 60.0, seed)


async def _checkpointed_run(
    store: Store, cfg: Config, events: list[EventDict], rnd: random.Random
) -> tuple[bytes, float, bool]:
    """The trace in rounds of one to five events with a lagging watermark, checkpointed
    twice at random rounds (the rest only in the log); the floor it serves, its last
    watermark, and whether the first checkpoint covered anything."""
    rounds: list[list[EventDict]] = []
    i = 0
    while i < len(events):
        n = rnd.randint(1, 5)
        rounds.append(events[i : i + n])
        i += n
    first, second = sorted(rnd.randint(0, len(rounds)) for _ in range(2))
    start = min(float(e["ts"]) for e in events) - 1.0
    run = Run(store, cfg, start)
    await store.open()
    await run.recover()
    watermark = start
    for n in range(len(rounds) + 1):
        for _ in range((n == first) + (n == second)):
            await run.writer.checkpoint()
        if n < len(rounds):
            lag = rnd.choice((0, 20, 60))
            watermark = max(watermark, max(float(e["ts"]) for e in rounds[n]) - lag)
            await run.round(rounds[n], watermark)
    assert run.writer.checkpoints_total == 2
    served = await run.floor(_end(events))
    await store.close()
    return served, watermark, first > 0


def _end(events: list[EventDict]) -> float:
    return max(float(e["ts"]) for e in events) + 3600.0


@pytest.mark.parametrize("damage", list(_DAMAGE))
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(floors(), st.randoms(use_true_random=False), _bits, _bits, st.booleans())
def test_file_recovery_serves_the_floor_of_the_run_or_refuses_only_when_nothing_is_left(
    damage: str,
    floor: tuple[Config, list[EventDict]],
    rnd: random.Random,
    bit_newest: int,
    bit_previous: int,
    small_segments: bool,
) -> None:
    """Random floors checkpointed twice, random one-bit flips in the newest, the
    previous or both kept checkpoints: recovery serves exactly the floor the run served
    (the floor of a replay of every event), or, only when both checkpoints are damaged
    and the log no longer starts at its first segment, refuses."""
    cfg, events = floor

    async def check() -> None:
        segment_bytes = 300 if small_segments else 64 * 1024 * 1024
        with (
            tempfile.TemporaryDirectory() as tmp,
            mock.patch("callfloor.store.file.SEGMENT_BYTES", segment_bytes),
        ):
            path = Path(tmp)
            served, watermark, _ = await _checkpointed_run(FileStore(path), cfg, events, rnd)
            bits = (bit_newest, bit_previous)
            for slot in _DAMAGE[damage]:
                kept = path / ("checkpoint", "checkpoint.previous")[slot]
                kept.write_bytes(_flip(kept.read_bytes(), bits[slot]))
            whole_log = (path / "log" / "00000001.seg").exists()
            store = FileStore(path)
            await store.open()
            again = Run(store, cfg, watermark)
            try:
                event(f"damaged: {damage}, whole log kept: {whole_log}")
                if damage == "both" and not whole_log:
                    with pytest.raises(StoreError, match="every kept checkpoint"):
                        await again.recover()
                    return
                await again.recover()
                assert await again.floor(_end(events)) == served
                fallbacks = again.writer.checkpoint_fallbacks_total
                assert sum(fallbacks.values()) == _EXAMINED_BAD[damage]
            finally:
                await store.close()

    asyncio.run(check())


@pytest.mark.parametrize("damage", list(_DAMAGE))
@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(floors(max_agents=4), st.randoms(use_true_random=False), _bits, _bits)
def test_redis_recovery_serves_the_floor_of_the_run_or_refuses_only_when_nothing_is_left(
    redis_server: RedisServer,
    damage: str,
    floor: tuple[Config, list[EventDict]],
    rnd: random.Random,
    bit_newest: int,
    bit_previous: int,
) -> None:
    """The same with a Redis store on a real redis-server: flipped bits in the
    partition's kept checkpoints; the floor of the run, or a refusal only when both are
    damaged and the streams were trimmed behind the previous one."""
    cfg, events = floor

    async def check() -> None:
        client = Redis.from_url(redis_server.url)
        await client.flushdb()
        await client.aclose()
        served, watermark, trimmed = await _checkpointed_run(
            _redis(redis_server.url), cfg, events, rnd
        )
        store = _redis(redis_server.url)
        bits = (bit_newest, bit_previous)
        for slot in _DAMAGE[damage]:
            await _flip_key(redis_server.url, store.checkpoint_key(ALL, slot), bits[slot])
        await store.open()
        again = Run(store, cfg, watermark)
        try:
            event(f"damaged: {damage}, streams trimmed: {trimmed}")
            if damage == "both" and trimmed:
                with pytest.raises(StoreError, match="every kept checkpoint"):
                    await again.recover()
                return
            await again.recover()
            assert await again.floor(_end(events)) == served
            fallbacks = again.writer.checkpoint_fallbacks_total
            assert sum(fallbacks.values()) == _EXAMINED_BAD[damage]
        finally:
            await store.close()

    asyncio.run(check())

"""Ownership of partitions between processes sharing one Redis: in-process services
(real writers, real Redis stores on a real redis-server) with their coordinators and
followers; wanted owners by rendezvous hashing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from fixtures.redis_server import RedisServer
from helpers import decode, ev
from hypothesis import given
from hypothesis import strategies as st

from callfloor.config import Config, parse_config
from callfloor.events import Event
from callfloor.ingest.source import Batch, Receipt
from callfloor.service import FloorService
from callfloor.service.ownership import Coordinator, Follower, LeaseTiming, wanted_owner
from callfloor.store.redis import RedisStore

TTL_S = 1.0
SITES = ("a", "b", "c", "d", "e", "f")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running:
        yield running


def _config(url: str, partitions: str = "site") -> Config:
    return parse_config(
        {
            "sites": {site: {"timezone": "UTC"} for site in SITES},
            "store": {
                "url": url,
                "partitions": partitions,
                "lease_ttl": f"{TTL_S}s",
                "checkpoint_every": "0.2s",
            },
        }
    )


class Member:
    """One in-process service with its coordinator and follower (a `serve` without HTTP)."""

    def __init__(self, config: Config, name: str) -> None:
        self.name = name
        self.store = RedisStore(config.store, sites=config.named_sites(), member=name)
        self.service = FloorService(config, store=self.store, tick_s=0.05, watermark_delay_s=0.0)
        self.coordinator = Coordinator(self.service)
        self.follower = Follower(self.service, block_s=0.1)
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.store.open()
        self.tasks = [
            asyncio.create_task(self.service.writer.run(), name=f"{self.name}:ingest"),
            asyncio.create_task(self.coordinator.run(), name=f"{self.name}:ownership"),
            asyncio.create_task(self.follower.run(), name=f"{self.name}:follow"),
        ]

    @property
    def owned(self) -> frozenset[str]:
        return self.service.writer.owned

    def events(self) -> int:
        """Events applied by this member's partitions."""
        return sum(p.view.counters().events for p in self.service.writer.processors())

    def queues(self) -> set[str]:
        return {q for p in self.service.writer.processors() for q in p.view.queue_names()}

    async def submit(self, events: list[Event]) -> Receipt:
        """Hand events to this process; returns once they are acknowledged (durable)."""
        acked: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        await self.service.submit(Batch(events, source="test", ack=acked.set_result))
        return await asyncio.wait_for(acked, 10.0)

    async def _cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []

    async def crash(self) -> None:
        """Stop at once: no checkpoint, no release, no goodbye (a SIGKILL)."""
        await self._cancel()
        await self.store.close()

    async def stop(self) -> None:
        """The shutdown order: the round ends, a final checkpoint, the leases released."""
        await self.service.writer.settle(5.0)
        await self._cancel()
        await self.service.writer.checkpoint()
        await self.coordinator.close()
        await self.store.close()


@contextlib.asynccontextmanager
async def members(config: Config, *names: str) -> AsyncIterator[list[Member]]:
    started = [Member(config, name) for name in names]
    try:
        for member in started:
            await member.start()
        yield started
    finally:
        for member in started:
            if member.tasks:
                await member.crash()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Wait for ``check()``; how long it took."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - began


def _calls(n: int, start: int = 0) -> list[Event]:
    """``n`` queued calls on every site (queue ``q<site>``), with ids."""
    now = time.time() - 5
    return [
        decode(
            ev("call_queued", now, call_id=f"{site}{i}", queue=f"q{site}", id=f"{site}{i}")
            | {"site": site}
        )
        for i in range(start, start + n)
        for site in SITES
    ]


def _split(names: tuple[str, ...]) -> dict[str, set[str]]:
    owned: dict[str, set[str]] = {name: set() for name in names}
    for site in SITES:
        owner = wanted_owner(site, names)
        assert owner is not None
        owned[owner].add(site)
    assert all(owned.values()), "test data: every member must win some site"
    return owned


async def test_a_lone_member_takes_every_partition_and_applies_its_streams(
    redis_server: RedisServer,
) -> None:
    """One process owns every site's partition and applies what it appended."""
    async with members(_config(redis_server.url), "m1") as [m1]:
        await until(lambda: m1.owned == set(SITES))
        await m1.submit(_calls(5))
        await until(lambda: m1.events() == 5 * len(SITES))
    assert m1.coordinator.adopted == len(SITES)
    assert m1.service.writer.stale_entries_total == 0, "every entry was read once"


async def test_two_members_share_the_sites_and_each_site_is_applied_once(
    redis_server: RedisServer,
) -> None:
    """A second process gets the sites it is wanted for by a hand-over; events appended
    by either are applied once, by the site's owner, whichever process received them."""
    split = _split(("m1", "m2"))
    config = _config(redis_server.url)
    async with members(config, "m1") as [m1]:
        await until(lambda: m1.owned == set(SITES))
        await m1.submit(_calls(3))
        await until(lambda: m1.events() == 3 * len(SITES))
        m2 = Member(config, "m2")
        await m2.start()
        try:
            await until(lambda: m1.owned == split["m1"] and m2.owned == split["m2"])
            await m2.submit(_calls(2, 3))
            await m1.submit(_calls(2, 5))
            total = 7 * len(SITES)
            await until(lambda: m1.events() + m2.events() == total)
            assert m2.queues() == {f"q{site}" for site in split["m2"]}
            assert m1.coordinator.handed_over == len(split["m2"])
        finally:
            await m2.crash()


async def test_a_dead_members_sites_are_taken_over_within_the_lease_ttl(
    redis_server: RedisServer,
) -> None:
    """When a process dies without a word, the other takes its sites over within
    lease_ttl, restoring them from their checkpoints and streams: nothing acknowledged
    to the dead one is lost."""
    split = _split(("m1", "m2"))
    async with members(_config(redis_server.url), "m1", "m2") as [m1, m2]:
        await until(lambda: m1.owned == split["m1"] and m2.owned == split["m2"])
        await m2.submit(_calls(4))
        await until(lambda: m1.events() + m2.events() == 4 * len(SITES))
        await asyncio.sleep(0.3)  # checkpoints of m2's sites
        await m2.submit(_calls(1, 4))  # acknowledged by m2: durable, maybe not applied
        await m2.crash()
        took = await until(lambda: m1.owned == set(SITES))
        assert took < TTL_S, f"the takeover took {took:.2f} s"
        await until(lambda: m1.events() == 5 * len(SITES))


async def test_a_stopped_member_hands_its_sites_over_at_once(
    redis_server: RedisServer,
) -> None:
    """A process that stops releases its leases after its final checkpoint: the other
    takes over without waiting for them to expire."""
    split = _split(("m1", "m2"))
    async with members(_config(redis_server.url), "m1", "m2") as [m1, m2]:
        await until(lambda: m1.owned == split["m1"] and m2.owned == split["m2"])
        await m2.submit(_calls(2))
        await until(lambda: m1.events() + m2.events() == 2 * len(SITES))
        await m2.stop()
        took = await until(lambda: m1.owned == set(SITES))
        assert took < LeaseTiming(TTL_S).lease_s / 2
        await until(lambda: m1.events() == 2 * len(SITES))


async def test_a_member_cut_off_from_redis_stops_applying_before_its_leases_end(
    redis_server: RedisServer,
) -> None:
    """A process that cannot renew drops its partitions (no checkpoint) before another
    could take them; once Redis is back it takes them again and has lost nothing."""
    async with members(_config(redis_server.url), "m1") as [m1]:
        await until(lambda: m1.owned == set(SITES))
        await m1.submit(_calls(3))
        await until(lambda: m1.events() == 3 * len(SITES))
        redis_server.kill()
        took = await until(lambda: not m1.owned)
        timing = LeaseTiming(TTL_S)
        assert took < timing.lease_s, "dropped after another member could have taken them"
        assert m1.coordinator.leases_lost == len(SITES)
        assert m1.coordinator.status()["leases"] == "failing"
        redis_server.start()
        await until(lambda: m1.owned == set(SITES))
        await until(lambda: m1.events() == 3 * len(SITES))
        await m1.submit(_calls(1, 3))
        await until(lambda: m1.events() == 4 * len(SITES))
    assert m1.coordinator.recoveries >= 1


async def test_one_partition_of_every_site_has_one_owner_and_a_standby(
    redis_server: RedisServer,
) -> None:
    """With partitions "all" one process applies the whole floor and the other stands
    by; when the owner dies the standby takes it all over."""
    config = _config(redis_server.url, partitions="all")
    async with members(config, "m1", "m2") as both:
        await until(lambda: sum(len(m.owned) for m in both) == 1 and any(m.owned for m in both))
        owner, standby = (both[0], both[1]) if both[0].owned else (both[1], both[0])
        await standby.submit(_calls(2))
        await until(lambda: owner.events() == 2 * len(SITES))
        await owner.crash()
        await until(lambda: standby.owned == {"all"}, timeout=TTL_S * 2)
        await until(lambda: standby.events() == 2 * len(SITES))


@given(
    members_=st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=6, unique=True),
    partition=st.text(max_size=10),
)
def test_a_member_leaving_moves_only_the_partitions_it_was_wanted_for(
    members_: list[str], partition: str
) -> None:
    """Every member computes the same wanted owner; removing any other member does not
    change it (rendezvous hashing moves only what the leaver had)."""
    owner = wanted_owner(partition, members_)
    assert owner in members_
    assert wanted_owner(partition, list(reversed(members_))) == owner
    for gone in members_:
        if gone != owner:
            assert wanted_owner(partition, [m for m in members_ if m != gone]) == owner

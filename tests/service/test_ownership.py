"""Ownership of partitions between processes sharing one Redis: in-process services
(real writers, real Redis stores on a real redis-server) with their coordinators and
followers; wanted owners by rendezvous hashing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fixtures.redis_server import RedisServer
from helpers import decode, ev
from hypothesis import given
from hypothesis import strategies as st
from members import Member, Stalls, running, until

from callfloor.config import Config, parse_config
from callfloor.events import Event
from callfloor.service.ownership import LeaseTiming, wanted_owner

TTL_S = 1.0
# For the tests that count adoptions and hand-overs rather than time them: a member
# that cannot renew for 0.4 x lease_ttl gives its leases up, which a machine stalled
# for 0.4 s would make it do with TTL_S (and adopt again, counted twice).
STEADY_TTL_S = 5.0
SITES = ("a", "b", "c", "d", "e", "f")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running:
        yield running


def _config(url: str, partitions: str = "site", ttl_s: float = TTL_S) -> Config:
    return parse_config(
        {
            "sites": {site: {"timezone": "UTC"} for site in SITES},
            "store": {
                "url": url,
                "partitions": partitions,
                "lease_ttl": f"{ttl_s}s",
                "checkpoint_every": "0.2s",
            },
        }
    )


@contextlib.asynccontextmanager
async def members(config: Config, *names: str) -> AsyncIterator[list[Member]]:
    started = [Member(config, name) for name in names]
    async with running(*started):
        yield started


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
    async with members(_config(redis_server.url, ttl_s=STEADY_TTL_S), "m1") as [m1]:
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
    config = _config(redis_server.url, ttl_s=STEADY_TTL_S)
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
        with Stalls() as stalls:
            took = await until(lambda: m1.owned == set(SITES))
        # Timed while the machine let it run: a stall delays every member alike.
        took -= stalls.seconds
        assert took < TTL_S, f"the takeover took {took:.2f} s (stalls {stalls.seconds:.2f} s)"
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
        # Released, not expired: once stopped, m2 holds no lease and has left the members
        # (its leases last 0.6 x lease_ttl from their last renewal, so one it did not
        # release would still name it). Read from Redis, this holds however long the
        # machine stalls, unlike a time limit on the takeover.
        holders = {site: await m1.store.holder(site) for site in split["m2"]}
        assert "m2" not in holders.values(), f"leases not released: {holders}"
        assert await m1.store.redis.zscore(m1.store.members_key, "m2") is None
        await until(lambda: m1.owned == set(SITES))
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
        lost = m1.coordinator.leases_lost
        redis_server.kill()
        with Stalls() as stalls:
            took = await until(lambda: not m1.owned)
        # Timed while the machine let it run (the design leaves 0.1 x lease_ttl to spare,
        # 0.1 s here, which any stall of the machine would take).
        took -= stalls.seconds
        timing = LeaseTiming(TTL_S)
        assert took < timing.lease_s, (
            f"dropped {took:.2f} s after Redis went (stalls {stalls.seconds:.2f} s): "
            "after another member could have taken them"
        )
        assert m1.coordinator.leases_lost - lost == len(SITES)
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
        await until(lambda: standby.owned == {"all"})
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

"""Partitions whose lease is lost are served frozen and marked stale (issue 10, item 3).

In-process services (real writers, real Redis stores on a real redis-server) with their
coordinators and followers. A member cut off from Redis (the server hung with SIGSTOP,
or only this member's connection held by a TCP proxy) stops applying its partitions
before its leases end, and keeps serving them to its readers as they last stood: never
ticked, fed or published again, marked stale; the copy goes when the partition is
adopted again, or when another member is seen holding it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.redis_server import RedisServer
from fixtures.tcp_proxy import tcp_proxy
from helpers import decode, ev
from members import Member, Stalls, running, until
from prometheus_client.parser import text_string_to_metric_families

from callfloor.config import Config, parse_config
from callfloor.events import Event
from callfloor.processors.views import ChangeSet
from callfloor.service.ownership import LeaseTiming, wanted_owner
from callfloor.sinks.redis_floor import RedisFloor

TTL_S = 2.0
SITES = ("north", "south")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running_server:
        yield running_server


def _config(url: str, partitions: str = "all") -> Config:
    return parse_config(
        {
            "sites": {site: {"timezone": "UTC"} for site in SITES},
            "queues": {f"q{site}": {"site": site} for site in SITES},
            "store": {
                "url": url,
                "partitions": partitions,
                "lease_ttl": f"{TTL_S}s",
                "checkpoint_every": "0.2s",
            },
        }
    )


def _floor(n: int) -> list[Event]:
    """``n`` calls waiting on each site's queue, and an agent per site."""
    now = time.time() - 5
    calls = [
        decode(
            ev("call_queued", now, call_id=f"{site}{i}", queue=f"q{site}", id=f"{site}{i}")
            | {"site": site}
        )
        for i in range(n)
        for site in SITES
    ]
    agents = [
        decode(
            ev("agent_state", now, agent=f"a{site}", state="available", id=f"a{site}")
            | {"site": site, "queues": [f"q{site}"]}
        )
        for site in SITES
    ]
    return calls + agents


def _names(member: Member) -> tuple[list[str], list[str]]:
    """The queues and agents this member's readers see."""
    view = member.service.view
    return view.queue_names(), view.agent_names()


def _members_wanting(partition: str, *, first_wanted: bool) -> tuple[str, str]:
    """Two member names of which the first is (or is not) the wanted owner of partition."""
    for i in range(100):
        pair = (f"m{i}a", f"m{i}b")
        if (wanted_owner(partition, pair) == pair[0]) == first_wanted:
            return pair
    raise AssertionError("no such pair of names")


async def test_a_member_whose_redis_hangs_stops_applying_before_its_leases_end(
    redis_server: RedisServer,
) -> None:
    """Redis hung (SIGSTOP, connections open, no answer): the partitions are given up
    before another member could take them, not once a Redis call times out."""
    config = _config(redis_server.url, partitions="site")
    m1 = Member(config, "m1")
    async with running(m1):
        await until(lambda: m1.owned == set(SITES))
        await m1.submit(_floor(2))
        await until(lambda: m1.events() == 2 * len(SITES) + len(SITES))
        redis_server.pause()
        try:
            with Stalls() as stalls:
                took = await until(lambda: not m1.owned, 20.0)
            took -= stalls.seconds
            assert took < LeaseTiming(TTL_S).lease_s, (
                f"dropped {took:.2f} s after Redis hung (stalls {stalls.seconds:.2f} s): "
                "after another member could have taken them"
            )
            assert sorted(m1.service.writer.frozen) == sorted(SITES)
        finally:
            redis_server.resume()


async def test_a_frozen_partition_is_served_but_never_ticked_nor_published(
    redis_server: RedisServer,
) -> None:
    """While its lease is lost the partition is read as it last stood (the same as_of
    and document, waits not growing) with every site marked stale, and the change bus
    carries nothing of it."""
    m1 = Member(_config(redis_server.url), "m1")
    async with running(m1):
        await until(lambda: m1.owned == {"all"})
        await m1.submit(_floor(3))
        await until(lambda: m1.events() == 3 * len(SITES) + len(SITES))
        live = _names(m1)
        redis_server.pause()
        try:
            await until(lambda: not m1.owned, 20.0)
            sub = m1.service.bus.subscribe("test", 10_000)
            frozen = m1.service.writer.frozen["all"]
            view = m1.service.view
            first = view.document()
            stale = view.stale()
            await asyncio.sleep(0.5)  # ten ticks
            later = m1.service.view.document()
            published: list[ChangeSet] = []
            while len(sub):
                changes = await sub.get()
                assert changes is not None
                published.append(changes)
        finally:
            redis_server.resume()
    assert (sorted(first.queues), sorted(first.agents)) == live
    assert first.queues["qnorth"].live.waiting == 3
    assert later == first, "the frozen partition moved"
    assert sorted(stale) == sorted(SITES)
    for mark in stale.values():
        assert (mark.partition, mark.since, mark.as_of) == ("all", frozen.since, first.as_of)
    assert first.as_of < frozen.since
    assert published, "no tick published while the partition was frozen"
    assert not [c for c in published if c], f"a frozen partition published: {published[:3]}"


async def test_readers_keep_the_frozen_copy_until_it_is_adopted_again(
    redis_server: RedisServer,
) -> None:
    """Cut off alone (its connection to Redis held) the owner serves the partition stale
    while another member takes it over; once it can reach Redis again and is the wanted
    owner, it takes the partition back: live again, the stale mark gone, and its
    readers never saw the floor empty."""
    wanted, other = _members_wanting("all", first_wanted=True)
    async with tcp_proxy(redis_server.port) as proxy:
        via_proxy = _config(f"redis://127.0.0.1:{proxy.port}/0")
        cut = Member(via_proxy, wanted)
        async with running(cut):
            await until(lambda: cut.owned == {"all"})
            await cut.submit(_floor(2))
            await until(lambda: cut.events() == 2 * len(SITES) + len(SITES))
            live = _names(cut)
            blank: list[float] = []

            async def watch() -> None:
                while True:
                    if _names(cut) != live:
                        blank.append(time.monotonic())
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            proxy.pause()
            try:
                await until(lambda: "all" in cut.service.writer.frozen, 20.0)
                taker = Member(_config(redis_server.url), other)
                async with running(taker):
                    await until(lambda: taker.owned == {"all"}, 20.0, "taken over")
                    assert cut.service.view.stale(), "the stale mark went while cut off"
                    proxy.resume()
                    await until(lambda: cut.owned == {"all"}, 20.0, "taken back")
                    assert not taker.owned
                    # Owned first, adopted (the log read to its end) then: the frozen
                    # copy is served until the adoption replaces it.
                    await until(
                        lambda: cut.service.view.stale() == {} and not cut.service.writer.frozen,
                        20.0,
                        "the stale mark gone once adopted again",
                    )
                    as_of = cut.service.view.as_of
                    await until(lambda: cut.service.view.as_of > as_of, 5.0, "live again")
            finally:
                proxy.resume()
                watcher.cancel()
    assert not blank, "the readers saw another floor while the partition moved"


async def test_a_frozen_copy_is_discarded_once_another_member_holds_the_partition(
    redis_server: RedisServer,
) -> None:
    """A member that can reach Redis again and sees another live member holding the
    partition's lease (the one wanted for it) drops its frozen copy: no stale floor for
    ever; its Redis live floor never wrote any of the frozen partition meanwhile."""
    other, wanted = _members_wanting("all", first_wanted=False)
    async with tcp_proxy(redis_server.port) as proxy:
        via_proxy = _config(f"redis://127.0.0.1:{proxy.port}/0")
        cut = Member(via_proxy, other)
        sink = RedisFloor(cut.service, refresh_s=0.05, backoff_s=(0.02, 0.2), timeout_s=0.5)
        async with running(cut):
            sink_task = asyncio.create_task(sink.run())
            try:
                await until(lambda: cut.owned == {"all"})
                await cut.submit(_floor(2))
                await until(lambda: cut.events() == 2 * len(SITES) + len(SITES))
                await until(lambda: sink.hashes_written > 0, 10.0, "the live floor written")
                proxy.pause()
                await until(lambda: "all" in cut.service.writer.frozen, 20.0)
                written = sink.hashes_written
                taker = Member(_config(redis_server.url), wanted)
                async with running(taker):
                    await until(lambda: taker.owned == {"all"}, 20.0, "taken over")
                    await until(lambda: taker.events() == 3 * len(SITES), 10.0, "restored")
                    proxy.resume()
                    await until(lambda: not cut.service.writer.frozen, 20.0, "discarded")
                    assert cut.service.view.stale() == {}
                    assert cut.service.view.queue_names() == []
                    assert not cut.owned and taker.owned == {"all"}
                    await asyncio.sleep(0.3)  # several refreshes of the sink
                    assert sink.hashes_written == written
            finally:
                proxy.resume()
                sink_task.cancel()
                await asyncio.gather(sink_task, return_exceptions=True)


async def test_a_stale_partition_is_read_beside_live_ones_and_only_they_are_exported(
    redis_server: RedisServer,
) -> None:
    """With one partition frozen and another applied, readers see both (the stale sites
    marked, at their own as_of; the floor's as_of moving with the live one) and /metrics
    exports only the applied one's series: summed across processes, a site taken over
    elsewhere is never counted twice."""
    config = _config(redis_server.url, partitions="site")
    m1 = Member(config, "m1")
    async with running(m1):
        await until(lambda: m1.owned == set(SITES))
        await m1.submit(_floor(2))
        await until(lambda: m1.events() == 3 * len(SITES))
        # As a lease lost drops it (the coordinator still holds it: nothing adopts it again).
        await m1.service.writer.drop("north", checkpoint=False)
        frozen = m1.service.writer.frozen["north"]
        view = m1.service.view
        first_as_of = view.as_of
        await until(lambda: m1.service.view.as_of > first_as_of, 5.0, "the live one ticking")
        view = m1.service.view
        metrics = m1.service.metrics_body().decode()
    assert view.queue_names() == ["qnorth", "qsouth"]
    assert view.agent_names() == ["anorth", "asouth"]
    assert list(view.stale()) == ["north"]
    mark = view.stale()["north"]
    assert (mark.partition, mark.since, mark.as_of) == ("north", frozen.since, frozen.proc.clock)
    assert view.as_of > mark.as_of
    waiting = {line.split(" ")[0] for line in metrics.splitlines() if "_waiting_calls{" in line}
    assert waiting == {
        'callfloor_queue_waiting_calls{queue="qsouth"}',
        'callfloor_site_waiting_calls{site="south"}',
    }
    gauges = [
        (s.labels, s.value)
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "callfloor_partition_stale_since_seconds"
    ]
    assert gauges == [({"partition": "north"}, frozen.since)]

"""The Redis store on a real redis-server: streams per site, checkpoints under a lease
that trim behind them, followed reads, leases and members, and outages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fixtures.redis_server import RedisServer, free_port
from fixtures.tcp_proxy import tcp_proxy
from helpers import T0, decode, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from callfloor.config import StoreConfig
from callfloor.events import Event
from callfloor.ingest.source import Batch
from callfloor.store.base import ALL, LeaseLost, Logged, StoreError
from callfloor.store.redis import SITES_REFRESH_S, RedisStore, redact


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running:
        yield running


def _config(
    url: str,
    partitions: str | tuple[tuple[str, ...], ...] | None = None,
    prefix: str = "callfloor",
) -> StoreConfig:
    return StoreConfig(url=url, kind="redis", partitions=partitions, key_prefix=prefix)


@contextlib.asynccontextmanager
async def _opened(
    url: str,
    *,
    partitions: str | tuple[tuple[str, ...], ...] | None = None,
    sites: tuple[str, ...] = (),
    member: str | None = None,
    prefix: str = "callfloor",
) -> AsyncIterator[RedisStore]:
    store = RedisStore(_config(url, partitions, prefix), sites=sites, member=member)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _events(site: str, n: int, start: int = 0) -> list[Event]:
    return [
        decode(
            ev("call_queued", T0 + i, call_id=f"{site}{i}", queue=f"q{site}", id=f"{site}{i}")
            | {"site": site}
        )
        for i in range(start, start + n)
    ]


def _ids(logged: list[Logged]) -> list[tuple[str, list[str]]]:
    return [(item.stream, [e.id or "" for e in item.events]) for item in logged]


async def _replayed(
    store: RedisStore, partition: str, positions: dict[str, str] | None = None
) -> list[Logged]:
    return [item async for item in store.replay(partition, positions or {})]


async def test_rounds_come_back_per_site_in_order_with_their_clock(
    redis_server: RedisServer,
) -> None:
    """Each round is one entry per site present, replayed in append order with the clock
    it was admitted at, each entry saying where its read started."""
    async with _opened(redis_server.url) as store:
        first = await store.append([Batch(_events("a", 2)), Batch(_events("b", 1))], T0)
        second = await store.append([Batch(_events("a", 1, 2))], T0 + 5)
        logged = await _replayed(store, ALL)
    assert set(first) == {"a", "b"} and set(second) == {"a"}
    assert _ids(logged) == [("a", ["a0", "a1"]), ("b", ["b0"]), ("a", ["a2"])]
    assert [item.at for item in logged] == [T0, T0, T0 + 5]
    assert [item.position for item in logged] == [first["a"], first["b"], second["a"]]
    assert [item.since for item in logged] == ["", "", first["a"]]
    assert {item.partition for item in logged} == {ALL}


async def test_replay_starts_after_the_given_positions(redis_server: RedisServer) -> None:
    """Positions (a checkpoint's) skip the entries they cover, stream by stream."""
    async with _opened(redis_server.url) as store:
        first = await store.append([Batch(_events("a", 1) + _events("b", 1))], T0)
        await store.append([Batch(_events("a", 1, 1) + _events("b", 1, 1))], T0 + 1)
        logged = await _replayed(store, ALL, {"a": first["a"]})
    assert _ids(logged) == [("b", ["b0"]), ("a", ["a1"]), ("b", ["b1"])]
    assert logged[1].since == first["a"]


async def test_replay_reads_long_streams_in_pages_merged_by_id(
    redis_server: RedisServer,
) -> None:
    """More entries than one page come back complete and in id order across streams."""
    async with _opened(redis_server.url) as store:
        for i in range(1200):
            site = "a" if i % 3 else "b"
            await store.append([Batch(_events(site, 1, i))], T0 + i)
        logged = await _replayed(store, ALL)
    assert [item.at for item in logged] == [T0 + i for i in range(1200)]
    chain: dict[str, str] = {}
    for item in logged:
        assert item.since == chain.get(item.stream, "")
        chain[item.stream] = item.position


async def test_a_partition_replays_only_its_own_sites(redis_server: RedisServer) -> None:
    """With partitions by site, a site's partition reads its stream and no other."""
    async with _opened(redis_server.url, partitions="site") as store:
        await store.append([Batch(_events("a", 1) + _events("b", 1))], T0)
        assert await store.partitions() == {"a", "b"}
        assert _ids(await _replayed(store, "b")) == [("b", ["b0"])]


async def test_partitions_follow_the_configured_mode(redis_server: RedisServer) -> None:
    """ "all" is one partition whatever the sites; a group is one partition named after
    its first site; configured sites are known before any event."""
    async with _opened(redis_server.url, sites=("a", "b", "c")) as every:
        assert await every.partitions() == {ALL}
    async with _opened(redis_server.url, partitions=(("a", "b"),)) as grouped:
        assert await grouped.partitions() == {"a", "c"}


async def test_invalid_item_counts_ride_with_the_round(redis_server: RedisServer) -> None:
    """A round's invalid items are kept once (with its first site's entry); a round of
    nothing else goes to the first configured site's stream."""
    async with _opened(redis_server.url, sites=("x", "y")) as store:
        await store.append([Batch(_events("b", 1) + _events("a", 1), rejected={"bad": 2})], T0)
        await store.append([Batch([], rejected={"bad": 1})], T0 + 1)
        logged = await _replayed(store, ALL)
    # Sorted: the two XADDs of one MULTI may fall in two milliseconds, and the streams'
    # entries interleave by the millisecond Redis gave them (each stream keeps its order).
    assert sorted((item.stream, item.rejected) for item in logged) == [
        ("a", {"bad": 2}),
        ("b", {}),
        ("x", {"bad": 1}),
    ]


async def test_a_checkpoint_lands_under_the_lease_and_trims_behind_the_previous_one(
    redis_server: RedisServer,
) -> None:
    """The lease holder's checkpoint is kept, the one it replaces becomes the previous
    one, and the streams lose what the previous one covers; the entries after it stay
    and replay."""
    async with _opened(redis_server.url, member="m1") as store:
        first = await store.append([Batch(_events("a", 3) + _events("b", 1))], T0)
        second = await store.append([Batch(_events("a", 1, 3))], T0 + 1)
        assert await store.acquire(ALL, 5.0)
        await store.save(ALL, b"state-1", first, previous={})
        assert await store.redis.xlen(store.stream_key("a")) == 2  # nothing before it kept
        await store.save(ALL, b"state-2", {**first, **second}, previous=first)
        assert (await store.load(ALL), await store.load(ALL, 1)) == (b"state-2", b"state-1")
        assert await store.redis.xlen(store.stream_key("a")) == 1
        assert await store.redis.xlen(store.stream_key("b")) == 0
        assert _ids(await _replayed(store, ALL, dict(first))) == [("a", ["a3"])]
        assert store.saves == 2 and store.trimmed_entries == 2


async def test_a_checkpoint_without_the_lease_is_refused_and_changes_nothing(
    redis_server: RedisServer,
) -> None:
    """A member that lost the lease cannot overwrite the owner's checkpoint or trim."""
    async with (
        _opened(redis_server.url, member="owner") as owner,
        _opened(redis_server.url, member="late") as late,
    ):
        positions = await owner.append([Batch(_events("a", 2))], T0)
        assert await owner.acquire(ALL, 5.0)
        await owner.save(ALL, b"owner's", {}, previous={})
        with pytest.raises(LeaseLost, match="held by owner"):
            await late.save(ALL, b"stale", positions, previous=positions)
        assert await owner.load(ALL) == b"owner's"
        assert await owner.redis.xlen(owner.stream_key("a")) == 1
        assert late.saves_refused == 1


async def test_read_follows_entries_after_the_cursors(redis_server: RedisServer) -> None:
    """A followed read returns what is new after each stream's position (a stream not
    named from its start), and says where each entry's read started."""
    async with _opened(redis_server.url) as store:
        first = await store.append([Batch(_events("a", 1) + _events("b", 1))], T0)
        second = await store.append([Batch(_events("a", 1, 1))], T0 + 1)
        got = await store.read({ALL: {"a": first["a"]}}, 0.1)
    assert _ids(got) == [("b", ["b0"]), ("a", ["a1"])]
    assert [(item.since, item.position) for item in got] == [
        ("", first["b"]),
        (first["a"], second["a"]),
    ]


async def test_read_waits_for_new_entries_then_returns_them(redis_server: RedisServer) -> None:
    """With nothing new a read waits up to block_s; an append meanwhile ends the wait."""
    async with _opened(redis_server.url) as writer:
        start = await writer.append([Batch(_events("a", 1))], T0)
        async with _opened(redis_server.url) as reader:
            cursors = {ALL: dict(start)}
            began = time.monotonic()
            assert await reader.read(cursors, 0.3) == []
            assert time.monotonic() - began >= 0.25
            waiting = asyncio.ensure_future(reader.read(cursors, 5.0))
            await asyncio.sleep(0.2)
            await writer.append([Batch(_events("a", 1, 1))], T0 + 1)
            # Well within the read's 5 s, long enough for a stalled machine.
            got = await asyncio.wait_for(waiting, 4.0)
    assert _ids(got) == [("a", ["a1"])]


async def test_a_site_first_seen_by_another_process_is_followed(
    redis_server: RedisServer,
) -> None:
    """A site another process appended first becomes part of the followed streams."""
    async with _opened(redis_server.url, sites=("a",)) as reader:
        assert await reader.read({ALL: {}}, 0.05) == []
        async with _opened(redis_server.url) as other:
            await other.append([Batch(_events("new", 1))], T0)
        deadline = time.monotonic() + SITES_REFRESH_S + 3.0
        got: list[Logged] = []
        while not got and time.monotonic() < deadline:
            got = await reader.read({ALL: {}}, 0.2)
    assert _ids(got) == [("new", ["new0"])]


async def test_leases_have_one_holder_and_expire(redis_server: RedisServer) -> None:
    """One member holds a lease; renewing keeps it; once it expires another takes it and
    the first is told it lost it; only the holder can release it."""
    # Each check that depends on the clock is asserted only when the clock shows it was
    # made in time: a machine that stalled between two steps (CI machines stall for
    # hundreds of milliseconds, and a 0.1 s margin once failed a run there) sends the
    # story round again, on a fresh key, instead of failing it. Margins of lease_s / 3.
    lease_s = 1.5
    slack = 0.02  # Redis keeps expiries in whole milliseconds
    async with (
        _opened(redis_server.url, member="m1") as m1,
        _opened(redis_server.url, member="m2") as m2,
    ):

        async def story(key: str) -> bool:
            """The lease story on ``key``; False if a stall left a check meaningless."""
            assert await m1.acquire(key, lease_s)
            before = time.monotonic()
            assert await m1.acquire(key, lease_s), "acquiring one's own lease again is fine"
            after = time.monotonic()
            # m1's lease (renewed by its second acquire) ends in [before, after] + lease_s.
            taken = await m2.acquire(key, lease_s)
            if time.monotonic() > before + lease_s - slack:
                return False
            assert not taken
            await asyncio.sleep(max(0.0, before + lease_s * 2 / 3 - time.monotonic()))
            renewed_at = time.monotonic()
            lost = await m1.renew([key], lease_s)
            renewed = time.monotonic()
            if renewed > before + lease_s - slack:
                return False
            assert lost == set()
            # Past the end of the first lease, before the end of the renewed one.
            await asyncio.sleep(max(0.0, after + lease_s * 4 / 3 - time.monotonic()))
            taken = await m2.acquire(key, lease_s)
            if time.monotonic() > renewed_at + lease_s - slack:
                return False
            assert not taken, "the renewal kept it"
            await asyncio.sleep(max(0.0, renewed + lease_s + 0.2 - time.monotonic()))
            assert await m2.acquire(key, 5.0), "the renewed lease expired"
            assert await m1.renew([key], lease_s) == {key}
            await m1.release(key)
            assert await m2.holder(key) == "m2"
            await m2.release(key)
            assert await m1.holder(key) is None
            return True

        for attempt in range(5):
            if await story(f"a{attempt}"):
                break
        else:
            pytest.fail("the machine stalled in every attempt: no check could be made")


async def test_heartbeats_list_the_live_members(redis_server: RedisServer) -> None:
    """Members are live while their heartbeat lasts; one that stops disappears; one
    that leaves disappears at once."""
    async with (
        _opened(redis_server.url, member="m1") as m1,
        _opened(redis_server.url, member="m2") as m2,
    ):
        assert await m1.heartbeat(1.5) == ["m1"]
        assert await m2.heartbeat(5.0) == ["m1", "m2"]
        await asyncio.sleep(1.7)
        assert await m2.heartbeat(5.0) == ["m2"]
        assert await m1.heartbeat(5.0) == ["m1", "m2"]
        await m1.leave()
        assert await m2.heartbeat(5.0) == ["m2"]


async def test_a_stream_trimmed_behind_a_missing_checkpoint_is_refused_by_name(
    redis_server: RedisServer,
) -> None:
    """Replaying a stream from a point its trimmed entries were after (the partitions
    changed, a checkpoint was deleted) is refused, naming the stream, never a silent hole."""
    async with _opened(redis_server.url, member="m1") as store:
        first = await store.append([Batch(_events("a", 2))], T0)
        await store.append([Batch(_events("a", 1, 2))], T0 + 1)
        assert await store.acquire(ALL, 5.0)
        await store.save(ALL, b"state", first, previous=first)
        with pytest.raises(StoreError, match="callfloor:events:a was trimmed"):
            await _replayed(store, ALL, {})
        assert _ids(await _replayed(store, ALL, dict(first))) == [("a", ["a2"])]


async def test_an_undecodable_entry_is_skipped_counted_and_read_past(
    redis_server: RedisServer,
) -> None:
    """An entry callfloor did not write is counted and read as empty: the entries after
    it are still followed in an unbroken chain."""
    async with _opened(redis_server.url) as store:
        first = await store.append([Batch(_events("a", 1))], T0)
        bad = (await store.redis.xadd(store.stream_key("a"), {"r": b"\xc1garbage"})).decode()
        await store.append([Batch(_events("a", 1, 1))], T0 + 1)
        logged = await _replayed(store, ALL)
        followed = await store.read({ALL: dict(first)}, 0.1)
    assert _ids(logged) == [("a", ["a0"]), ("a", []), ("a", ["a1"])]
    assert logged[1].position == bad and logged[2].since == bad
    assert _ids(followed) == [("a", []), ("a", ["a1"])]
    assert store.bad_entries == 2


async def test_key_prefixes_keep_floors_apart(redis_server: RedisServer) -> None:
    """Two prefixes on one Redis see neither each other's events nor sites."""
    async with (
        _opened(redis_server.url, prefix="one") as one,
        _opened(redis_server.url, prefix="two", partitions="site") as two,
    ):
        await one.append([Batch(_events("a", 1))], T0)
        assert await two.partitions() == set()
        assert await _replayed(two, "a") == []
        assert _ids(await _replayed(one, ALL)) == [("a", ["a0"])]


async def test_an_unreachable_redis_is_named_without_its_password() -> None:
    """Opening a Redis nobody listens on says so, with the URL's password hidden."""
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    store = RedisStore(_config(url))
    with pytest.raises(StoreError) as failed:
        await store.open()
    text = str(failed.value)
    assert "cannot reach Redis" in text and "s3cret" not in text and ":***@" in text
    assert redact("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"


async def test_redis_down_fails_appends_counted_then_they_resume(
    redis_server: RedisServer,
) -> None:
    """While Redis is down an append raises (nothing is acknowledged), counted by
    operation; once it is back appends go on and the reconnect is counted."""
    async with _opened(redis_server.url) as store:
        await store.append([Batch(_events("a", 1))], T0)
        redis_server.kill()
        with pytest.raises(StoreError, match="append failed"):
            await store.append([Batch(_events("a", 1, 1))], T0 + 1)
        down = store.health()
        assert down.errors_by_op == {"append": 1} and not down.up
        assert down.last_error is not None and down.last_error.startswith("append: ")
        redis_server.start()
        await store.append([Batch(_events("a", 1, 1))], T0 + 1)
        back = store.health()
        assert back.up and back.reconnects == 1 and back.last_error is None
        assert _ids(await _replayed(store, ALL)) == [("a", ["a0"]), ("a", ["a1"])]


async def test_a_retried_append_whose_answer_was_lost_is_logged_once(
    redis_server: RedisServer,
) -> None:
    """When Redis appended a round but its answer never came, the writer's retry of the
    same round finds it there and does not log it twice."""
    async with (
        tcp_proxy(redis_server.port) as proxy,
        _opened(f"redis://127.0.0.1:{proxy.port}/0") as store,
    ):
        round_ = [Batch(_events("a", 2))]
        proxy.lose = True
        with pytest.raises(StoreError):
            await store.append(round_, T0)
        assert await store.append(round_, T0) == {}
        assert store.append_retries_found == 1
        assert _ids(await _replayed(store, ALL)) == [("a", ["a0", "a1"])]
        other = [Batch(_events("a", 1, 2))]
        proxy.lose = True
        with pytest.raises(StoreError):
            await store.append(other, T0)
        # A different round after a failure is a new round, not a retry.
        await store.append([Batch(_events("a", 1, 3))], T0)
        assert _ids(await _replayed(store, ALL))[-1] == ("a", ["a3"])


async def test_a_round_partly_failed_in_exec_is_retried_for_the_failed_sites_only(
    redis_server: RedisServer,
) -> None:
    """When one site's XADD fails inside the round's MULTI (its key holds another type),
    the retry appends only the sites that did not land: each site's events once."""
    async with _opened(redis_server.url) as store:
        other = Redis.from_url(redis_server.url)
        try:
            await other.set(store.stream_key("b"), "not a stream")  # someone else's key
            round_ = [Batch(_events("a", 1) + _events("b", 1))]
            with pytest.raises(StoreError, match="callfloor:events:b"):
                await store.append(round_, T0)
            assert store.errors_by_op["append"] == 1
            with pytest.raises(StoreError):
                await store.append(round_, T0)  # still broken: still refused
            await other.delete(store.stream_key("b"))  # the operator repairs it
            positions = await store.append(round_, T0)
        finally:
            await other.aclose()
        assert set(positions) == {"a", "b"}
        assert sorted(_ids(await _replayed(store, ALL))) == [("a", ["a0"]), ("b", ["b0"])]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://u:pw@h/1", "redis://u:***@h/1"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://:pw@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("unix:///run/redis.sock?password=pw&db=2", "unix:///run/redis.sock?password=***&db=2"),
        ("rediss://u@h/0?Password=pw", "rediss://u@h/0?Password=***"),
    ],
)
def test_redact_hides_every_password_a_url_can_carry(url: str, shown: str) -> None:
    """Passwords in the user part and in the query are masked; the rest is kept as written."""
    assert redact(url) == shown


_ROUNDS = st.lists(
    st.lists(st.sampled_from("abc"), min_size=1, max_size=4), min_size=1, max_size=12
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rounds=_ROUNDS, cut=st.integers(min_value=0, max_value=12))
def test_replay_after_a_checkpoint_is_exactly_what_came_after(
    redis_server: RedisServer, rounds: list[list[str]], cut: int
) -> None:
    """Whatever the rounds and wherever a checkpoint falls, replay after its positions
    returns exactly the events appended after it, each stream in order, in one chain."""

    async def check() -> None:
        client = Redis.from_url(redis_server.url)
        await client.flushdb()
        await client.aclose()
        async with _opened(redis_server.url, member="m") as store:
            positions: dict[str, str] = {}
            after: dict[str, list[str]] = {}
            n = 0
            for i, sites in enumerate(rounds):
                events = []
                for site in sites:
                    events += _events(site, 1, n)
                    n += 1
                got = await store.append([Batch(events)], T0 + i)
                if i < cut:
                    positions.update(got)
                else:
                    for e in events:
                        after.setdefault(e.site, []).append(e.id or "")
            assert await store.acquire(ALL, 5.0)
            await store.save(ALL, b"x", positions, previous=positions)
            logged = await _replayed(store, ALL, positions)
            seen: dict[str, list[str]] = {}
            chain = dict(positions)
            for item in logged:
                assert item.since == chain.get(item.stream, "")
                chain[item.stream] = item.position
                seen.setdefault(item.stream, []).extend(e.id or "" for e in item.events)
            assert seen == after

    asyncio.run(check())


async def test_a_site_seen_at_run_time_named_like_a_group_is_a_partition_apart(
    redis_server: RedisServer,
) -> None:
    """With the group [a, b], a site first seen at run time named 'a+b' is a partition of
    its own: each partition replays its own sites' streams and no other."""
    async with _opened(redis_server.url, partitions=(("a", "b"),), sites=("a", "b")) as store:
        await store.append([Batch(_events("a", 1) + _events("a+b", 1) + _events("b", 1))], T0)
        assert await store.partitions() == {"a", "a+b"}
        group = _ids(await _replayed(store, "a"))
        lone = _ids(await _replayed(store, "a+b"))
    assert sorted(group) == [("a", ["a0"]), ("b", ["b0"])]
    assert lone == [("a+b", ["a+b0"])]


# ---------------------------------------------------------------- streams with a hole


async def test_an_entry_deleted_after_the_checkpoint_is_refused(
    redis_server: RedisServer,
) -> None:
    """An entry deleted from a stream after the checkpoint's position (XDEL) is a hole:
    the replay is refused before anything is replayed, naming the stream and the entry."""
    async with _opened(redis_server.url) as store:
        first = await store.append([Batch(_events("a", 1))], T0)
        second = await store.append([Batch(_events("a", 1, 1))], T0 + 1)
        await store.append([Batch(_events("a", 1, 2))], T0 + 2)
        await store.redis.xdel(store.stream_key("a"), second["a"])
        with pytest.raises(StoreError, match=f"callfloor:events:a had entry {second['a']} deleted"):
            await _replayed(store, ALL, dict(first))
        assert _ids(await _replayed(store, ALL, dict(second))) == [("a", ["a2"])]


async def test_a_deleted_stream_the_checkpoint_covers_is_refused(
    redis_server: RedisServer,
) -> None:
    """A stream gone (DEL, eviction) while the checkpoint's positions name it is
    refused: whatever followed the position is lost."""
    async with _opened(redis_server.url) as store:
        first = await store.append([Batch(_events("a", 1))], T0)
        await store.redis.delete(store.stream_key("a"))
        with pytest.raises(StoreError, match="callfloor:events:a does not exist"):
            await _replayed(store, ALL, dict(first))


async def test_a_stream_that_ends_before_the_checkpoint_is_refused(
    redis_server: RedisServer,
) -> None:
    """A stream whose last id is before the checkpoint's position (Redis restored from an
    older backup than the checkpoint) is refused, naming both."""
    async with _opened(redis_server.url) as store:
        first = await store.append([Batch(_events("a", 1))], T0)
        ms, _ = first["a"].split("-")
        later = f"{int(ms) + 60_000}-0"
        with pytest.raises(StoreError, match=f"ends at {first['a']}, before .* {later}"):
            await _replayed(store, ALL, {"a": later})


async def test_an_emptied_stream_after_a_checkpoint_replays_nothing(
    redis_server: RedisServer,
) -> None:
    """A stream trimmed empty by checkpoints is still there (Redis keeps it): a replay
    from the position that covers it all is no hole."""
    async with _opened(redis_server.url, member="m1") as store:
        first = await store.append([Batch(_events("a", 2))], T0)
        assert await store.acquire(ALL, 5.0)
        await store.save(ALL, b"x", first, previous=first)
        assert await store.redis.xlen(store.stream_key("a")) == 0
        assert await _replayed(store, ALL, dict(first)) == []

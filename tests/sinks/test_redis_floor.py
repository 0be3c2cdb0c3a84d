"""The live floor in Redis: a real redis-server, a real FloorService, events over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from fixtures.redis_server import RedisServer
from helpers import T0, config, ev
from live import FakeClock, get, ndjson, post, serving

from callfloor.processors.state import decode_checkpoint, encode_checkpoint
from callfloor.service import FloorService
from callfloor.sinks.redis_floor import RedisFloor
from callfloor.store.memory import MemoryStore

PREFIX = "cft"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running_server:
        yield running_server


def floor_config(server: RedisServer, **extra: Any) -> Any:
    """A configuration with a redis:// store at the test server and two queues."""
    store = {"url": server.url, "key_prefix": PREFIX, **extra.pop("store", {})}
    return config(
        {
            "queues": {"sales": {"site": "north"}, "support": {"site": "south"}},
            "store": store,
            **extra,
        }
    )


@asynccontextmanager
async def live_floor(
    server: RedisServer,
    cfg: Any = None,
    clock: FakeClock | None = None,
    **floor_kwargs: Any,
) -> AsyncIterator[tuple[FloorService, str, RedisFloor]]:
    """A service on a free port (memory store, redis:// in its configuration, ticks every
    10 ms) running the RedisFloor given (as serve runs its own), stopped on exit."""
    floor_kwargs.setdefault("refresh_s", 0.05)
    floor_kwargs.setdefault("backoff_s", (0.02, 0.2))
    # Long enough that a stalled test machine does not turn a slow answer into an error
    # (and a reconnect and a resync the tests count); the tests of a hung Redis set their own.
    floor_kwargs.setdefault("timeout_s", 10.0)
    service = FloorService(
        cfg or floor_config(server),
        clock=clock or FakeClock(),
        host="127.0.0.1",
        port=0,
        tick_s=0.01,
        store=MemoryStore(),
    )
    assert service.redis_floor is not None  # a redis:// store gets the live floor
    floor = service.redis_floor = RedisFloor(service, **floor_kwargs)
    async with serving(service) as url:
        yield service, url, floor


@asynccontextmanager
async def client(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A Redis client that reads text."""
    r = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        yield r
    finally:
        await r.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {timeout} s: {check.__name__}")
        await asyncio.sleep(0.02)


def key(kind: str, name: str) -> str:
    return f"{PREFIX}:floor:{kind}:{name}"


async def api_floor(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    """Every queue, site and agent as the HTTP API answers them (one per name)."""
    _, listed = await get(http, base, "/api/v1/queues")
    _, agents = await get(http, base, "/api/v1/agents")
    out: dict[str, Any] = {"queue": {}, "site": {}, "agent": {}}
    for name in listed["queues"]:
        out["queue"][name] = (await get(http, base, f"/api/v1/queues/{name}"))[1]
    for name, site in listed["sites"].items():
        out["site"][name] = {"as_of": listed["as_of"], "name": name, **site}
    for name in agents["agents"]:
        out["agent"][name] = (await get(http, base, f"/api/v1/agents/{name}"))[1]
    return out


async def redis_floor(r: aioredis.Redis) -> dict[str, Any]:
    """Every queue, site and agent hash named in the index sets, decoded."""
    out: dict[str, Any] = {}
    for kind in ("queue", "site", "agent"):
        names = await r.smembers(f"{PREFIX}:floor:{kind}s")  # type: ignore[misc]
        out[kind] = {n: await r.hgetall(key(kind, n)) for n in names}  # type: ignore[misc]
    return out


async def matches_api(
    r: aioredis.Redis, http: aiohttp.ClientSession, base: str
) -> tuple[bool, dict[str, Any], dict[str, Any]]:
    """Whether every hash's JSON is the API's answer, name for name."""
    api = await api_floor(http, base)
    stored = await redis_floor(r)
    same = all(
        set(stored[kind]) == set(api[kind])
        and all(json.loads(stored[kind][n]["json"]) == api[kind][n] for n in api[kind])
        for kind in api
    )
    return same, api, stored


async def wait_matching(r: aioredis.Redis, http: aiohttp.ClientSession, base: str) -> None:
    async def hashes_match_api() -> bool:
        return (await matches_api(r, http, base))[0]

    await eventually(hashes_match_api)


def floor_events() -> bytes:
    return ndjson(
        ev(
            "agent_state",
            T0 - 50,
            agent="a1",
            state="available",
            queues=["sales"],
            site="north",
            name="Ann Example",
            team="blue",
        ),
        ev("agent_state", T0 - 50, agent="a2", state="available", queues=["support"], site="south"),
        ev("call_queued", T0 - 40, call_id="c1", queue="sales"),
        ev("call_queued", T0 - 30, call_id="c2", queue="sales"),
        ev("call_answered", T0 - 20, call_id="c1", queue="sales", agent="a1"),
        ev("agent_state", T0 - 20, agent="a1", state="on_call", queues=["sales"], site="north"),
        ev("call_queued", T0 - 10, call_id="c3", queue="support"),
    )


async def subscribed(r: aioredis.Redis) -> None:
    """Wait until the change channel has its subscriber (``messages`` subscribes when its
    first message is awaited): a change made before would not be heard."""

    async def channel_has_a_subscriber() -> bool:
        [(_, count)] = await r.pubsub_numsub(f"{PREFIX}:floor:changes")
        return int(count) >= 1

    await eventually(channel_has_a_subscriber)


async def messages(r: aioredis.Redis) -> AsyncGenerator[dict[str, Any], None]:
    """Messages of the change channel, decoded (subscribed before the first is awaited)."""
    pubsub = r.pubsub()
    await pubsub.subscribe(f"{PREFIX}:floor:changes")
    try:
        while True:
            deadline = time.monotonic() + 5.0
            message = None
            while message is None or message["type"] != "message":
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("no message on the change channel within 5 s")
                message = await pubsub.get_message(timeout=left)
            yield json.loads(message["data"])
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


# ----------------------------------------------------------------------------- hashes


async def test_hashes_match_the_api_after_changes(redis_server: RedisServer) -> None:
    """Every queue, site and agent hash holds the API's answer for it, and its flat fields
    the same values."""
    async with (
        live_floor(redis_server) as (_, base, _floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        status, _ = await post(http, base, floor_events())
        assert status == 202
        await wait_matching(r, http, base)
        same, api, stored = await matches_api(r, http, base)
        assert same
    assert set(stored["queue"]) == {"sales", "support"}
    assert set(stored["agent"]) == {"a1", "a2"}
    assert set(stored["site"]) == {"north", "south"}
    sales, sales_api = stored["queue"]["sales"], api["queue"]["sales"]
    assert sales["waiting"] == str(sales_api["live"]["waiting"]) == "1"
    assert float(sales["longest_wait_s"]) == sales_api["live"]["longest_wait_s"]
    assert sales["agents.on_call"] == str(sales_api["live"]["agents"]["on_call"])
    assert float(sales["15m.service_level"]) == sales_api["windows"]["15m"]["service_level"]
    assert sales["today.offered"] == str(sales_api["windows"]["today"]["offered"])
    assert sales["15m.aht_s"] == ""  # null: no call handled in the window
    assert sales["site"] == "north" and float(sales["as_of"]) == sales_api["as_of"]
    a1, a1_api = stored["agent"]["a1"], api["agent"]["a1"]
    assert a1["state"] == a1_api["state"] == "on_call"
    assert float(a1["state_since"]) == a1_api["state_since"]
    assert a1["display_name"] == "Ann Example" and a1["team"] == "blue"
    assert json.loads(a1["queues"]) == ["sales"]
    assert stored["site"]["south"]["waiting"] == "1"


async def test_index_sets_and_as_of(redis_server: RedisServer) -> None:
    """The index sets name every hash and ``as_of`` is the instant of the last write."""
    async with (
        live_floor(redis_server) as (service, base, _floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        await post(http, base, floor_events())
        await wait_matching(r, http, base)
        assert await r.smembers(f"{PREFIX}:floor:agents") == {"a1", "a2"}  # type: ignore[misc]
        assert float(await r.get(f"{PREFIX}:floor:as_of")) == service.view.as_of


async def test_an_agent_change_rewrites_its_hash(redis_server: RedisServer) -> None:
    """An agent's next state reaches its hash (a change set names it)."""
    async with (
        live_floor(redis_server) as (_, base, _floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        await post(http, base, floor_events())
        await wait_matching(r, http, base)
        await post(http, base, ndjson(ev("agent_state", T0 - 5, agent="a2", state="not_ready")))
        await wait_matching(r, http, base)
        assert await r.hget(key("agent", "a2"), "state") == "not_ready"  # type: ignore[misc]


# ----------------------------------------------------------------------------- channel


async def test_message_names_what_changed(redis_server: RedisServer) -> None:
    """A change publishes a message naming the agent and site it touched, after the write."""
    async with (
        live_floor(redis_server) as (_, base, _floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        await post(http, base, floor_events())
        await wait_matching(r, http, base)
        stream = messages(r)
        first = asyncio.ensure_future(anext(stream))
        await subscribed(r)
        body = ndjson(ev("agent_state", T0 - 5, agent="a3", state="available", site="south"))
        await post(http, base, body)
        message = await first
        while "a3" not in message["agents"]:
            message = await anext(stream)
        await stream.aclose()
        # Published in the same MULTI as the hash: a subscriber finds it written.
        assert await r.hget(key("agent", "a3"), "state") == "available"  # type: ignore[misc]
    assert message["agents"] == ["a3"]
    assert message["sites"] == ["south"]
    assert message["resync"] is False
    assert message["violations"] == []


async def test_message_carries_a_violation_that_started(redis_server: RedisServer) -> None:
    """A violation that starts as time passes is in the message and counted on the agent."""
    clock = FakeClock()
    async with (
        live_floor(redis_server, clock=clock) as (_, base, _floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        body = ndjson(ev("agent_state", T0 - 5, agent="a1", state="not_ready", reason="x"))
        await post(http, base, body)
        await wait_matching(r, http, base)
        stream = messages(r)
        first = asyncio.ensure_future(anext(stream))
        await subscribed(r)
        clock.t += 11 * 60  # past the default not_ready_max of 10 minutes
        message = await first
        while not message["violations"]:
            message = await anext(stream)
        await stream.aclose()
        await wait_matching(r, http, base)
        active = await r.hget(key("agent", "a1"), "violations_active")  # type: ignore[misc]
    assert [(v["kind"], v["agent"]) for v in message["violations"]] == [
        ("not_ready_exceeded", "a1")
    ]
    assert "a1" in message["agents"]
    assert active == "1"


# ----------------------------------------------------------------------------- expiry


async def test_an_expired_agent_hash_shows_what_the_api_shows(redis_server: RedisServer) -> None:
    """An agent silent past max_lateness expires: its hash follows the API (logged out)."""
    clock = FakeClock()
    cfg = floor_config(redis_server, limits={"max_lateness": "60s"})
    async with (
        live_floor(redis_server, cfg, clock) as (service, base, _floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        await post(http, base, floor_events())
        await wait_matching(r, http, base)
        clock.t += 300
        await service.next_tick()  # the tick that expires it
        await wait_matching(r, http, base)
        _, a2 = await get(http, base, "/api/v1/agents/a2")
        state = await r.hget(key("agent", "a2"), "state")  # type: ignore[misc]
    assert a2["state"] == state == "logged_out"


async def test_an_agent_the_floor_no_longer_has_is_deleted(redis_server: RedisServer) -> None:
    """An agent gone from the floor (a state restored without it) loses its hash and its
    index entry, and the message names it."""
    async with (
        live_floor(redis_server) as (service, base, floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        await post(http, base, floor_events())
        await service.next_tick()
        blob = encode_checkpoint(service.proc)
        body = ndjson(ev("agent_state", T0 - 5, agent="a9", state="available", site="south"))
        await post(http, base, body)
        await wait_matching(r, http, base)
        assert await r.exists(key("agent", "a9"))
        stream = messages(r)
        first = asyncio.ensure_future(anext(stream))
        await subscribed(r)
        service.proc = decode_checkpoint(service.config, blob, live=True).processor
        message = await first
        while "a9" not in message["agents"]:
            message = await anext(stream)
        await stream.aclose()
        await wait_matching(r, http, base)
        assert not await r.exists(key("agent", "a9"))
        assert "a9" not in await r.smembers(f"{PREFIX}:floor:agents")  # type: ignore[misc]
        assert floor.deleted == 1


# ----------------------------------------------------------------------------- resyncs


async def test_a_dropped_subscriber_resyncs(redis_server: RedisServer) -> None:
    """Dropped by the bus, the floor subscribes again and writes everything (counted)."""
    async with (
        live_floor(redis_server) as (service, base, floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        await post(http, base, floor_events())
        await wait_matching(r, http, base)
        resyncs = floor.resyncs
        stream = messages(r)
        first = asyncio.ensure_future(anext(stream))
        await subscribed(r)
        assert floor.subscription is not None
        service.bus.drop(floor.subscription)
        message = await first
        while not message["resync"]:
            message = await anext(stream)
        await stream.aclose()
        await wait_matching(r, http, base)
    assert floor.drops == 1 and floor.resyncs == resyncs + 1
    assert service.stats.changes_dropped_total == {"redis": 1}
    assert message["agents"] == ["a1", "a2"] and message["queues"] == ["sales", "support"]


async def test_a_resync_sweeps_hashes_the_floor_lacks(redis_server: RedisServer) -> None:
    """At start, hashes of names this floor lacks (left by an earlier process) are deleted."""
    async with client(redis_server) as r:
        await r.hset(key("agent", "gone"), mapping={"site": "north", "owner": "old:1"})  # type: ignore[misc]
        await r.sadd(f"{PREFIX}:floor:agents", "gone", "no-hash")  # type: ignore[misc]
        async with live_floor(redis_server) as (_, base, floor), aiohttp.ClientSession() as http:
            await post(http, base, floor_events())
            await wait_matching(r, http, base)
            assert floor.resyncs >= 1
        assert not await r.exists(key("agent", "gone"))
        assert await r.smembers(f"{PREFIX}:floor:agents") == {"a1", "a2"}  # type: ignore[misc]


async def test_a_redis_restart_mid_run_is_survived_and_resynced(
    redis_server: RedisServer,
) -> None:
    """Redis killed and started empty mid-run: the floor reconnects and writes it all again,
    including what changed while Redis was away."""
    async with (
        live_floor(redis_server) as (service, base, floor),
        aiohttp.ClientSession() as http,
    ):
        async with client(redis_server) as r:
            await post(http, base, floor_events())
            await wait_matching(r, http, base)
        resyncs = floor.resyncs
        redis_server.kill()
        for leftover in ("appendonlydir", "dump.rdb"):  # started empty: nothing survives
            with suppress(FileNotFoundError):
                path = redis_server.directory / leftover
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        body = ndjson(ev("agent_state", T0 - 5, agent="a1", state="not_ready", reason="x"))
        assert (await post(http, base, body))[0] == 202  # the service goes on

        async def failed() -> bool:
            return floor.errors > 0 and not floor.up

        await eventually(failed)
        async with http.get(f"{base}/metrics") as resp:
            text = await resp.text()
        assert "\ncallfloor_redis_floor_up 0.0\n" in text  # the failure is on /metrics
        assert "\ncallfloor_redis_floor_errors_total 0.0\n" not in text
        redis_server.start()
        async with client(redis_server) as r:
            await wait_matching(r, http, base)
            assert await r.hget(key("agent", "a1"), "state") == "not_ready"  # type: ignore[misc]
        assert floor.reconnects >= 1 and floor.resyncs >= resyncs + 1 and floor.up
        assert floor.drops == 0 and service.stats.changes_dropped_total.get("redis", 0) == 0


# ----------------------------------------------------------------------------- a stopped Redis


def pause(server: RedisServer) -> None:
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)


def resume(server: RedisServer) -> None:
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGCONT)


async def test_a_stopped_redis_never_delays_the_ticks(redis_server: RedisServer) -> None:
    """While a write hangs on a stopped Redis (30 s timeout), ticks and requests go on."""
    async with (
        live_floor(redis_server, timeout_s=30.0) as (service, base, floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        await post(http, base, floor_events())
        await wait_matching(r, http, base)
        writes = floor.writes
        pause(redis_server)
        try:
            started = time.monotonic()
            for i in range(20):
                body = ndjson(ev("agent_state", T0 - 5, agent=f"s{i}", state="available"))
                assert (await post(http, base, body))[0] == 202
                await service.next_tick()
            elapsed = time.monotonic() - started
            hung = floor.writes
        finally:
            resume(redis_server)
        await wait_matching(r, http, base)
    # 20 ticks of 10 ms and 20 requests: far less than one hung write's 30 s timeout.
    assert elapsed < 10.0
    assert hung <= writes + 1  # the writes were indeed held up meanwhile
    assert floor.drops == 0 and floor.errors == 0


async def test_change_sets_during_a_slow_write_are_coalesced(redis_server: RedisServer) -> None:
    """Change sets that arrive while a write hangs are merged: the next message names the
    union of what they changed."""
    async with (
        live_floor(redis_server, timeout_s=30.0) as (service, base, floor),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        await post(http, base, floor_events())
        await wait_matching(r, http, base)
        listener = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        stream = messages(listener)
        first = asyncio.ensure_future(anext(stream))
        await subscribed(r)
        begun = [0]  # writes begun: one begun after the pause hangs until the resume
        write = floor._write

        async def counted_write(plan: Any) -> None:
            begun[0] += 1
            await write(plan)

        floor._write = counted_write  # type: ignore[method-assign]
        pause(redis_server)
        paused_at = begun[0]

        async def a_write_hangs() -> bool:  # a queue refresh (every 50 ms), sent now
            return begun[0] > paused_at

        await eventually(a_write_hangs)
        before = floor.change_sets
        try:
            for i in range(5):
                body = ndjson(ev("agent_state", T0 - 5, agent=f"k{i}", state="available"))
                await post(http, base, body)
                await service.next_tick()
                await service.next_tick()
            sets_during = floor.change_sets - before
        finally:
            resume(redis_server)
        message = await first
        while not message["agents"]:  # a write in flight when Redis stopped named none
            message = await anext(stream)
        await stream.aclose()
        await listener.aclose()
        await wait_matching(r, http, base)
    assert message["agents"] == [f"k{i}" for i in range(5)]  # one message names them all
    assert sets_during >= 10


# ----------------------------------------------------------------------------- several processes


class Owned:
    """The partitions a test process owns (moved by hand for a hand-over)."""

    def __init__(self, *partitions: str) -> None:
        self.partitions = set(partitions)

    def __call__(self) -> Collection[str]:
        return frozenset(self.partitions)


def test_a_site_named_all_is_not_the_whole_floor(redis_server: RedisServer) -> None:
    """With partitions by site, owning the site named "all" is owning that site only."""
    cfg = floor_config(redis_server, store={"partitions": "site"})
    service = FloorService(cfg, clock=FakeClock(), host="127.0.0.1", port=0, store=MemoryStore())
    floor = RedisFloor(service, owned=lambda: {"all"})
    mine = floor._mine(frozenset({"all"}))
    assert mine("all")
    assert not mine("north")


async def test_processes_sharing_redis_keep_each_others_keys(redis_server: RedisServer) -> None:
    """Two processes owning one site each write their own names and delete none of the
    other's, resyncs included."""
    cfg = floor_config(redis_server, store={"partitions": "site"})
    north, south = Owned("north"), Owned("south")
    async with (
        live_floor(redis_server, cfg, owner="A", owned=north) as (_, base_a, floor_a),
        live_floor(redis_server, cfg, owner="B", owned=south) as (_, base_b, floor_b),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        body_a = ndjson(ev("agent_state", T0 - 5, agent="n1", state="available", site="north"))
        body_b = ndjson(ev("agent_state", T0 - 5, agent="s1", state="available", site="south"))
        await post(http, base_a, body_a)
        await post(http, base_b, body_b)

        async def both_written() -> bool:
            return bool(await r.exists(key("agent", "n1"), key("agent", "s1")) == 2)

        await eventually(both_written)
        assert floor_a.subscription is not None
        floor_a.service.bus.drop(floor_a.subscription)  # A resyncs: B's keys stay

        async def resynced() -> bool:
            return floor_a.resyncs >= 2

        await eventually(resynced)
        owners = [
            await r.hget(key("agent", "n1"), "owner"),  # type: ignore[misc]
            await r.hget(key("agent", "s1"), "owner"),  # type: ignore[misc]
            await r.hget(key("queue", "support"), "owner"),  # type: ignore[misc]
        ]
        agents = await r.smembers(f"{PREFIX}:floor:agents")  # type: ignore[misc]
    assert owners == ["A", "B", "B"]
    assert agents == {"n1", "s1"}
    assert floor_a.deleted == 0 and floor_b.deleted == 0


async def test_a_site_handed_over_keeps_its_keys_until_the_new_owner_writes(
    redis_server: RedisServer,
) -> None:
    """A site that moves to another process: its hashes stay (old owner's values) until
    the new owner writes them; the new owner then sweeps names its floor lacks."""
    cfg = floor_config(redis_server, store={"partitions": "site"})
    owned_a, owned_b = Owned("north"), Owned("south")
    async with (
        live_floor(redis_server, cfg, owner="A", owned=owned_a) as (svc_a, base_a, floor_a),
        live_floor(redis_server, cfg, owner="B", owned=owned_b) as (svc_b, base_b, floor_b),
        aiohttp.ClientSession() as http,
        client(redis_server) as r,
    ):
        for agent in ("n1", "n2"):
            body = ndjson(ev("agent_state", T0 - 9, agent=agent, state="available", site="north"))
            await post(http, base_a, body)

        async def a_wrote() -> bool:
            return bool(await r.exists(key("agent", "n1"), key("agent", "n2")) == 2)

        await eventually(a_wrote)
        # A gives north up: its floor no longer has it (a fresh processor) and owns nothing.
        owned_a.partitions.clear()
        svc_a.proc = type(svc_a.proc)(svc_a.config, live=True)
        resyncs = floor_a.resyncs
        await svc_a.next_tick()
        await svc_a.next_tick()
        await asyncio.sleep(0.2)  # several of A's flushes
        kept = await r.hgetall(key("agent", "n1"))  # type: ignore[misc]
        assert kept["owner"] == "A" and kept["state"] == "available"
        assert await r.exists(key("agent", "n2"))
        # B takes north over: its floor has n1 (now not ready) but not n2, then it owns it.
        body = ndjson(ev("agent_state", T0 - 5, agent="n1", state="not_ready", site="north"))
        await post(http, base_b, body)
        await svc_b.next_tick()
        assert (await r.hgetall(key("agent", "n1")))["owner"] == "A"  # type: ignore[misc]
        owned_b.partitions.add("north")

        async def b_took_over() -> bool:
            n1 = await r.hgetall(key("agent", "n1"))  # type: ignore[misc]
            gone = not await r.exists(key("agent", "n2"))
            return n1.get("owner") == "B" and n1.get("state") == "not_ready" and gone

        await eventually(b_took_over)
    assert floor_a.deleted == 0 and floor_a.resyncs == resyncs
    assert floor_b.resyncs >= 2  # at start, and when it took north over
    assert floor_b.deleted == 1  # n2, which A wrote and B's floor lacks


# ----------------------------------------------------------------------------- connection


async def test_a_redis_down_at_start_is_waited_for(redis_server: RedisServer) -> None:
    """With Redis down when the service starts, the floor retries and writes it all once
    Redis is up; the service serves meanwhile."""
    redis_server.kill()
    async with (
        live_floor(redis_server) as (_, base, floor),
        aiohttp.ClientSession() as http,
    ):
        assert (await post(http, base, floor_events()))[0] == 202

        async def retried() -> bool:
            return floor.errors >= 2

        await eventually(retried)
        redis_server.start()
        async with client(redis_server) as r:
            await wait_matching(r, http, base)
    assert floor.reconnects == 1 and floor.resyncs == 1


async def test_a_password_in_the_url_is_used_and_never_logged(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis with requirepass is written with the URL's password, which no log line shows."""
    server = redis_server
    async with client(server) as r:  # (the fixture's start-up PING knows no password)
        await r.config_set("requirepass", "s3cret-pw")
    url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
    wrong = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
    cfg = config({"store": {"url": url, "key_prefix": PREFIX}})
    async with (
        live_floor(server, cfg) as (_, base, _floor),
        live_floor(server, cfg, url=wrong) as (_, _, refused),
        aiohttp.ClientSession() as http,
    ):
        await post(http, base, floor_events())
        r = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            await wait_matching(r, http, base)
        finally:
            await r.aclose()

        async def was_refused() -> bool:
            return refused.errors > 0

        await eventually(was_refused)
    assert refused.writes == 0 and "AuthenticationError" in (refused.last_error or "")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "redis_floor_down" in logged
    assert "s3cret-pw" not in logged and "wrong-pw" not in logged

"""Second review of issue 6 (partition lifecycle, restarts): in-process services sharing
a real redis-server (writers, Redis stores, coordinators and followers, as `serve` runs
them). Each test was a confirmed bug, fixed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.redis_server import RedisServer
from helpers import decode, ev
from members import Member, running, until
from redis.asyncio import Redis

from callfloor.config import Config, parse_config
from callfloor.events import Event
from callfloor.ingest.source import Batch
from callfloor.service import FloorService
from callfloor.service.ownership import wanted_owner
from callfloor.store.redis import RedisStore

TTL_S = 1.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running:
        yield running


def _config(url: str, extra: dict[str, Any] | None = None, **store: Any) -> Config:
    data: dict[str, Any] = {
        "sites": {"a": {"timezone": "UTC"}, "b": {"timezone": "UTC"}},
        "store": {
            "url": url,
            "partitions": "site",
            "lease_ttl": f"{TTL_S}s",
            "checkpoint_every": "0.2s",
        }
        | store,
    }
    return parse_config(data | (extra or {}))


def _call(site: str, i: int, ts: float | None = None) -> Event:
    at = time.time() - 5 if ts is None else ts
    return decode(
        ev("call_queued", at, call_id=f"{site}{i}", queue=f"q{site}", id=f"{site}{i}")
        | {"site": site}
    )


def _names_owning(a: str, b: str) -> tuple[str, str]:
    """Two member names such that the first is wanted for site ``a``, the second for ``b``."""
    for i in range(100):
        names = (f"m{i}", f"n{i}")
        if wanted_owner(a, names) == names[0] and wanted_owner(b, names) == names[1]:
            return names
    raise AssertionError("no such names")


# ---------------------------------------------------------------------------- adoption


async def test_a_partition_whose_adoption_failed_is_not_applied(
    redis_server: RedisServer,
) -> None:
    """A partition whose replay is refused (its stream was trimmed behind a checkpoint it
    does not have) is not served or followed: nothing after the hole is applied."""
    config = _config(redis_server.url, checkpoint_every="60s")
    async with contextlib.AsyncExitStack() as stack:
        writer_store = RedisStore(config.store, sites=config.sites, member="writer")
        await writer_store.open()
        stack.push_async_callback(writer_store.close)
        await writer_store.append([Batch([_call("a", 1)])], float("-inf"))
        other = Redis.from_url(redis_server.url)
        stack.push_async_callback(other.aclose)
        # A checkpoint of partition a covered (and trimmed) entries up to 1-0; it is gone.
        await other.hset(writer_store.trimmed_key, "a", "1-0")
        member = Member(config, "m1")
        await stack.enter_async_context(running(member))
        await until(lambda: member.coordinator.adopt_errors >= 1)
        await asyncio.sleep(0.5)  # the follower's turn
        assert ("a" in member.owned, member.events()) == (False, 0)


# ---------------------------------------------------------------------------- configuration


async def test_a_configured_queue_whose_site_is_not_in_the_sites_table_is_served(
    redis_server: RedisServer,
) -> None:
    """With partitions = "site", a configured queue whose site is not in [sites] is shown
    (as `callfloor replay` shows it) before any of its events arrives."""
    queues = {"qa": {"site": "a"}, "qx": {"site": "x"}}
    config = _config(redis_server.url, {"queues": queues})
    member = Member(config, "m1")
    async with running(member):
        await until(lambda: "a" in member.owned)
        with contextlib.suppress(AssertionError):
            await until(lambda: "qx" in member.queues())
        assert member.queues() == {"qa", "qx"}


# ---------------------------------------------------------------------------- clocks


async def test_a_round_received_by_a_non_owner_does_not_move_the_owners_clock(
    redis_server: RedisServer,
) -> None:
    """An event of site b handed to the process that owns only site a (its clock an hour
    ahead) does not move site b's owner's floor past its own watermark."""
    # A lease_ttl no stall of the machine outlasts (0.4 x 5 s without a renewal): with
    # TTL_S, a stalled member gives its leases up and the sites move about meanwhile.
    config = _config(redis_server.url, lease_ttl="5s")
    ahead_name, owner_name = _names_owning("a", "b")
    ahead = Member(config, ahead_name, clock=lambda: time.time() + 3600)
    owner = Member(config, owner_name)
    # The owner starts alone and owns both sites, so neither partition was ever
    # applied (and checkpointed) at the skewed clock before the hand-over of a.
    async with running(owner):
        await until(lambda: owner.owned == {"a", "b"})
        async with running(ahead):
            await until(lambda: ahead.owned == {"a"} and owner.owned == {"b"})
            await asyncio.sleep(0.2)  # a tick of partition a, to its (skewed) watermark
            await ahead.submit([_call("b", 1)])
            await until(lambda: owner.events() == 1)
            [proc] = owner.service.writer.processors()
            assert proc.clock <= time.time() + 1


# ---------------------------------------------------------------------------- shutdown


async def test_a_stop_while_redis_does_not_answer_is_bounded(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A service owning three partitions stops (SIGTERM) within one store timeout of
    Redis freezing, not one timeout per partition."""
    caplog.set_level(logging.CRITICAL)
    sites = {site: {"timezone": "UTC"} for site in ("a", "b", "c")}
    config = _config(redis_server.url, {"sites": sites}, lease_ttl="10s")
    service = FloorService(config, host="127.0.0.1", port=0, tick_s=0.05)
    task = asyncio.create_task(service.run())
    assert redis_server.proc is not None
    try:
        await asyncio.wait_for(service.started.wait(), 5)
        await until(lambda: len(service.writer.owned) == 3)
        os.kill(redis_server.proc.pid, signal.SIGSTOP)  # Redis takes no more commands
        began = time.monotonic()
        task.cancel()  # what SIGTERM does
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 11.0)
        took = time.monotonic() - began
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert took < 11.0

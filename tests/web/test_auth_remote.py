"""Access rules for a peer beyond loopback: the service listens on a non-loopback address
of this machine and the test connects to it, so the peer address is that one too."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiohttp
import pytest
from helpers import T0, config, ev
from live import FakeClock, ndjson

from callfloor.config import Config
from callfloor.service import FloorService
from callfloor.web.auth import is_loopback_peer

LATE = T0 - 30
WRITE = "w-token"
READ = "r-token"
AGENT = ev(
    "agent_state",
    LATE,
    agent="a1",
    state="available",
    name='Ann "Lee"',
    team="blue",
    site="sh",
    queues=["sales"],
)


def _local_address() -> str | None:
    """A non-loopback IPv4 address of this machine that can be bound, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            # No packet is sent: connecting a UDP socket only picks the source address.
            probe.connect(("198.51.100.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    if is_loopback_peer(address) or address == "0.0.0.0":
        return None
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return None
    return address


ADDRESS = _local_address()
pytestmark = pytest.mark.skipif(
    ADDRESS is None, reason="this machine has no non-loopback address to test a remote peer"
)


@asynccontextmanager
async def remote(cfg: Config) -> AsyncIterator[tuple[FloorService, str]]:
    """A service listening on the non-loopback address; yields it and its URL."""
    assert ADDRESS is not None
    service = FloorService(cfg, clock=FakeClock(), host=ADDRESS, port=0, tick_s=0.01)
    task = asyncio.create_task(service.run())
    started = asyncio.create_task(service.started.wait())
    await asyncio.wait([task, started], timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield service, f"http://{ADDRESS}:{service.bound_port}"
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def _cfg(read: tuple[str, ...] = (), write: tuple[str, ...] = (WRITE,), **extra: Any) -> Config:
    return config({"http": {"write_tokens": list(write), "read_tokens": list(read)}, **extra})


async def _post(
    http: aiohttp.ClientSession, base: str, body: bytes, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/x-ndjson"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.post(f"{base}/api/v1/events", data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def _read(
    http: aiohttp.ClientSession, base: str, path: str, token: str | None = None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(base + path, headers=headers) as resp:
        return resp.status, await resp.read()


async def test_writes_from_beyond_loopback_without_write_tokens_are_403() -> None:
    """Without write tokens a POST from a non-loopback peer is a 403 naming write_tokens."""
    async with remote(_cfg(write=())) as (service, base), aiohttp.ClientSession() as http:
        status, reply = await _post(http, base, ndjson(AGENT))
        await service.next_tick()
        assert service.view.agent_names() == []
        assert service.stats.http_errors_total == {"403": 1}
    assert status == 403
    assert "configure [http] write_tokens" in reply["error"]
    assert "loopback" in reply["error"]


async def test_writes_from_beyond_loopback_with_the_write_token_are_taken() -> None:
    """With write tokens a non-loopback peer that sends one writes (202)."""
    async with remote(_cfg()) as (_, base), aiohttp.ClientSession() as http:
        status, reply = await _post(http, base, ndjson(AGENT), WRITE)
    assert (status, reply["accepted"]) == (202, 1)


async def test_display_names_are_hidden_beyond_loopback_without_read_tokens() -> None:
    """Both agent endpoints answer display_name null, keeping id, team, site and queues."""
    async with remote(_cfg()) as (service, base), aiohttp.ClientSession() as http:
        await _post(http, base, ndjson(AGENT), WRITE)
        await service.next_tick()
        _, listed = await _read(http, base, "/api/v1/agents")
        _, one = await _read(http, base, "/api/v1/agents/a1")
    entry = json.loads(listed)["agents"]["a1"]
    single = json.loads(one)
    assert (entry["display_name"], entry["team"], entry["site"]) == (None, "blue", "sh")
    assert (single["name"], single["display_name"], single["queues"]) == ("a1", None, ["sales"])
    assert b"Ann" not in listed + one


async def test_metrics_carry_no_display_names_beyond_loopback() -> None:
    """With per-agent series, callfloor_agent_info's name label is empty; team stays."""
    cfg = _cfg(metrics={"per_agent_series": True})
    async with remote(cfg) as (service, base), aiohttp.ClientSession() as http:
        await _post(http, base, ndjson(AGENT), WRITE)
        await service.next_tick()
        status, exposition = await _read(http, base, "/metrics")
    assert status == 200
    info = [line for line in exposition.splitlines() if line.startswith(b"callfloor_agent_info{")]
    assert info == [b'callfloor_agent_info{agent="a1",name="",site="sh",team="blue"} 1.0']
    assert b"Ann" not in exposition


async def test_the_snapshot_keys_agents_by_id_beyond_loopback() -> None:
    """The state document is served unchanged: agents keyed by id, no display names in it."""
    async with remote(_cfg()) as (service, base), aiohttp.ClientSession() as http:
        await _post(http, base, ndjson(AGENT), WRITE)
        await service.next_tick()
        status, body = await _read(http, base, "/api/v1/snapshot")
    assert status == 200
    assert list(json.loads(body)["agents"]) == ["a1"]


async def test_read_token_holders_beyond_loopback_see_display_names() -> None:
    """With read tokens, a non-loopback reader with one gets the names; without one, a 401."""
    async with remote(_cfg(read=(READ,))) as (service, base), aiohttp.ClientSession() as http:
        await _post(http, base, ndjson(AGENT), WRITE)
        await service.next_tick()
        refused, _ = await _read(http, base, "/api/v1/agents")
        status, body = await _read(http, base, "/api/v1/agents/a1", READ)
    assert refused == 401
    assert (status, json.loads(body)["display_name"]) == (200, 'Ann "Lee"')

"""The Host check (DNS rebinding) against a real server, and the names it accepts."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest
from helpers import T0, config, ev
from live import FakeClock, ndjson, running, serving

from callfloor.service import FloorService
from callfloor.web.hosts import Hosts, host_name

LATE = T0 - 30
WRITE = "w-token-0123456789"
READ = "r-token-0123456789"
EVENT = ndjson(ev("call_queued", LATE, call_id="c1", queue="q"))
FOREIGN = "rebind.attacker.example:8080"


async def _get(
    http: aiohttp.ClientSession, url: str, host: str | None, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Host": host} if host is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.json()


async def _post(
    http: aiohttp.ClientSession, base: str, host: str, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Host": host, "Content-Type": "application/x-ndjson"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.post(f"{base}/api/v1/events", data=EVENT, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_foreign_host_is_421_on_reads_without_tokens() -> None:
    """Without any token configured, a read naming a foreign Host is a counted JSON 421
    naming [http] allowed_hosts."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        status, reply = await _get(http, f"{base}/api/v1/agents", FOREIGN)
    assert status == 421
    assert "rebind.attacker.example" in reply["error"]
    assert "[http] allowed_hosts" in reply["error"]
    assert reply["need"] == "allowed_host"
    assert service.stats.http_errors_total == {"421": 1}


async def test_a_foreign_host_is_421_on_writes_and_nothing_is_taken() -> None:
    """A loopback POST naming a foreign Host (a rebinding page) is a 421 and takes nothing."""
    async with running() as (service, base), aiohttp.ClientSession() as http:
        status, _ = await _post(http, base, FOREIGN)
        await service.next_tick()
        assert service.view.queue_names() == []
    assert status == 421


async def test_reads_are_checked_when_only_write_tokens_are_set() -> None:
    """With write tokens only, an unauthenticated read naming a foreign Host is still 421."""
    cfg = config({"http": {"write_tokens": [WRITE]}})
    async with running(cfg) as (_, base), aiohttp.ClientSession() as http:
        status, _ = await _get(http, f"{base}/api/v1/queues", FOREIGN)
        probe, _ = await _get(http, f"{base}/healthz", FOREIGN)
    assert (status, probe) == (421, 421)


async def test_a_request_with_a_token_may_name_any_host() -> None:
    """A valid write token (POST) or read token (GET) is not Host-checked: a remote
    client with a token may use any name."""
    cfg = config({"http": {"write_tokens": [WRITE], "read_tokens": [READ]}})
    async with running(cfg) as (_, base), aiohttp.ClientSession() as http:
        wrote, reply = await _post(http, base, FOREIGN, WRITE)
        read, _ = await _get(http, f"{base}/api/v1/queues", FOREIGN, READ)
        wrong, _ = await _get(http, f"{base}/api/v1/queues", FOREIGN, "not-a-token-at-all")
    assert (wrote, reply["accepted"]) == (202, 1)
    assert read == 200
    assert wrong == 421


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST.:1234", "127.0.0.1", "127.0.0.1:8080", "[::1]:8080", "127.8.9.1"],
)
async def test_loopback_names_are_served(host: str) -> None:
    """localhost and loopback addresses, with or without a port, in any case, are served."""
    async with running() as (_, base), aiohttp.ClientSession() as http:
        status, _ = await _get(http, f"{base}/api/v1/queues", host)
    assert status == 200


async def test_allowed_hosts_names_and_suffixes_are_served() -> None:
    """[http] allowed_hosts admits its exact names and, for *.example.com, the names under it
    (not a name that merely ends the same way)."""
    cfg = config({"http": {"allowed_hosts": ["floor.corp.example", "*.wall.example"]}})
    async with running(cfg) as (_, base), aiohttp.ClientSession() as http:
        exact, _ = await _get(http, f"{base}/api/v1/queues", "Floor.Corp.Example:443")
        under, _ = await _get(http, f"{base}/api/v1/queues", "tv-3.wall.example")
        lookalike, _ = await _get(http, f"{base}/api/v1/queues", "evilwall.example")
        apex, _ = await _get(http, f"{base}/api/v1/queues", "wall.example")
    assert (exact, under, lookalike, apex) == (200, 200, 421, 421)


async def test_a_request_without_a_host_header_is_served() -> None:
    """An HTTP/1.0 request without Host is no browser's: it is served."""
    async with running() as (_, base):
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /api/v1/queues HTTP/1.0\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.0 200")


def _own_address() -> str | None:
    """A non-loopback IPv4 address of this machine, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


async def test_a_wildcard_bind_serves_the_address_the_client_reached() -> None:
    """Bound to 0.0.0.0, a request naming the machine's address it connected to is served;
    a foreign name on the same connection path is a 421."""
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    cfg = config({"http": {"write_tokens": [WRITE]}})
    service = FloorService(cfg, clock=FakeClock(), host="0.0.0.0", port=0, tick_s=0.01)
    async with serving(service), aiohttp.ClientSession() as http:
        url = f"http://{address}:{service.bound_port}/api/v1/queues"
        reached, _ = await _get(http, url, f"{address}:{service.bound_port}")
        foreign, _ = await _get(http, url, FOREIGN)
    assert (reached, foreign) == (200, 421)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Example.COM:8080", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:80", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"),
        ("10.0.0.1:80", "10.0.0.1"),
        ("[::1", None),
        ("a b", None),
        ("user@example.com", None),
    ],
)
def test_host_names(value: str, name: str | None) -> None:
    """A Host header's name is lower case without port, brackets or trailing dot."""
    assert host_name(value) == name


def test_the_bound_address_is_a_name_of_the_service_unless_a_wildcard() -> None:
    """A specific bind address is accepted; 0.0.0.0 and :: name nothing by themselves."""
    assert Hosts("10.1.2.3").allows("10.1.2.3:8080")
    assert Hosts("floor-1.lan").allows("FLOOR-1.lan")
    assert not Hosts("0.0.0.0").allows("0.0.0.0")
    assert not Hosts("::").allows("[::]:8080")
    assert Hosts("0.0.0.0").allows("10.9.9.9", local_address="::ffff:10.9.9.9")
    assert not Hosts("0.0.0.0").allows("10.9.9.9", local_address="10.9.9.8")

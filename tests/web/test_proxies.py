"""[http] trusted_proxies: who the client is behind a proxy, against a real server and as rules."""

from __future__ import annotations

import ipaddress
from typing import Any

import aiohttp
from helpers import T0, config, ev
from hypothesis import given
from hypothesis import strategies as st
from live import ndjson, running

from callfloor.web.proxies import TrustedProxies

LATE = T0 - 30
AGENT = ev("agent_state", LATE, agent="a1", state="available", name="Ann Lee")
EVENT = ndjson(ev("call_queued", LATE, call_id="c1", queue="q"))
OUTSIDE = "203.0.113.7"


async def _post(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str], body: bytes = EVENT
) -> tuple[int, dict[str, Any]]:
    sent = {"Content-Type": "application/x-ndjson", **headers}
    async with http.post(f"{base}/api/v1/events", data=body, headers=sent) as resp:
        return resp.status, await resp.json()


def _proxied(proxies: list[str]) -> Any:
    return config({"http": {"trusted_proxies": proxies}})


async def test_a_proxy_on_loopback_no_longer_makes_its_clients_loopback() -> None:
    """With the proxy at 127.0.0.1 trusted and no write token, a write it forwards from an
    outside client is a 403, and so is one whose client it does not name."""
    async with running(_proxied(["127.0.0.1"])) as (service, base), aiohttp.ClientSession() as h:
        outside, reply = await _post(h, base, {"X-Forwarded-For": OUTSIDE})
        unnamed, _ = await _post(h, base, {})
        await service.next_tick()
        assert service.view.queue_names() == []
    assert (outside, unnamed) == (403, 403)
    assert "trusted_proxies" in reply["error"]


async def test_a_loopback_client_reported_by_the_proxy_is_loopback() -> None:
    """A client the proxy reports as 127.0.0.1 (in either header) writes without a token."""
    async with running(_proxied(["127.0.0.1"])) as (_, base), aiohttp.ClientSession() as h:
        by_xff, _ = await _post(h, base, {"X-Forwarded-For": "127.0.0.1"})
        by_forwarded, _ = await _post(h, base, {"Forwarded": 'for="127.0.0.1:4711";proto=https'})
    assert (by_xff, by_forwarded) == (202, 202)


async def test_a_forged_header_does_not_make_a_client_loopback() -> None:
    """A client that sends X-Forwarded-For: 127.0.0.1 itself gets the proxy's append after
    it; one that adds a Forwarded header the proxy passes on disagrees with the proxy's
    X-Forwarded-For. Both stay outside."""
    async with running(_proxied(["127.0.0.1"])) as (_, base), aiohttp.ClientSession() as h:
        prefixed, _ = await _post(h, base, {"X-Forwarded-For": f"127.0.0.1, {OUTSIDE}"})
        other_header, _ = await _post(
            h, base, {"Forwarded": "for=127.0.0.1", "X-Forwarded-For": OUTSIDE}
        )
    assert (prefixed, other_header) == (403, 403)


async def test_a_loopback_peer_that_is_not_a_proxy_stays_loopback() -> None:
    """With only 127.0.0.2 trusted, a request from 127.0.0.1 is its own client: its
    X-Forwarded-For is ignored and it writes as loopback."""
    async with running(_proxied(["127.0.0.2"])) as (_, base), aiohttp.ClientSession() as h:
        status, _ = await _post(h, base, {"X-Forwarded-For": OUTSIDE})
    assert status == 202


async def test_display_names_follow_the_client_the_proxy_reports() -> None:
    """Through a trusted proxy (its connections from 127.0.0.2), an outside client does not
    see agents' display names; a loopback client, as the proxy reports it, does."""
    cfg = _proxied(["127.0.0.2"])
    proxy = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with running(cfg) as (service, base), aiohttp.ClientSession(connector=proxy) as h:
        status, _ = await _post(h, base, {"X-Forwarded-For": "127.0.0.1"}, ndjson(AGENT))
        await service.next_tick()
        names = {}
        for client in (OUTSIDE, "::1"):
            async with h.get(
                f"{base}/api/v1/agents/a1", headers={"X-Forwarded-For": client}
            ) as resp:
                names[client] = (await resp.json())["display_name"]
    assert status == 202
    assert names == {OUTSIDE: None, "::1": "Ann Lee"}


PROXIES = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])


def test_the_right_most_untrusted_address_is_the_client() -> None:
    """The walk goes from the right past trusted proxies; all trusted: the left-most."""
    client = PROXIES.client
    assert client("10.0.0.5", x_forwarded=["198.51.100.1, 203.0.113.9, 10.1.1.1"]) == (
        "203.0.113.9"
    )
    assert client("10.0.0.5", x_forwarded=["10.2.2.2, 10.1.1.1"]) == "10.2.2.2"
    assert client("10.0.0.5", x_forwarded=["198.51.100.1", "10.1.1.1"]) == "198.51.100.1"


def test_forwarded_elements_are_parsed_with_quotes_ports_and_brackets() -> None:
    """RFC 7239 for= values: quoted, with ports, IPv6 in brackets, among other parameters."""
    assert PROXIES.client("127.0.0.1", forwarded=['For="[2001:db8::17]:4711";proto=https']) == (
        "2001:db8::17"
    )
    assert PROXIES.client("127.0.0.1", forwarded=["for=192.0.2.60:80;by=10.0.0.1"]) == (
        "192.0.2.60"
    )


def test_what_is_not_an_address_gives_no_client() -> None:
    """unknown, an obfuscated name, a missing for=, no header at all: no client."""
    assert PROXIES.client("10.0.0.5", forwarded=["for=unknown"]) is None
    assert PROXIES.client("10.0.0.5", forwarded=["for=_hidden, for=10.1.1.1"]) is None
    assert PROXIES.client("10.0.0.5", forwarded=["proto=https"]) is None
    assert PROXIES.client("10.0.0.5", x_forwarded=["not-an-ip"]) is None
    assert PROXIES.client("10.0.0.5") is None


def test_headers_count_only_from_a_trusted_peer() -> None:
    """An untrusted peer is its own client; without proxies configured the peer always is."""
    assert PROXIES.client("198.51.100.3", x_forwarded=["127.0.0.1"]) == "198.51.100.3"
    assert TrustedProxies().client("127.0.0.1", x_forwarded=[OUTSIDE]) == "127.0.0.1"
    assert PROXIES.client("::ffff:10.0.0.5", x_forwarded=[OUTSIDE]) == OUTSIDE


_ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))


_outside = _ipv4.filter(lambda a: not PROXIES.trusts(ipaddress.ip_address(a)))


@given(forged=st.lists(_ipv4, max_size=5), real=_outside)
def test_a_client_cannot_forge_its_way_past_the_proxy(forged: list[str], real: str) -> None:
    """Whatever addresses a client puts in X-Forwarded-For, the address the proxy appends
    for it (one that is not a proxy itself) is the client."""
    header = ", ".join([*forged, real])
    assert PROXIES.client("127.0.0.1", x_forwarded=[header]) == real

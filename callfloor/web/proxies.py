"""Who the client is behind a trusted reverse proxy (``[http] trusted_proxies``).

Without trusted proxies the client is the peer address, as before. With them:

- a peer that is not a trusted proxy is the client itself, whatever headers it sends
  (a loopback peer stays loopback);
- a peer that is a trusted proxy is not the client: the client is read from
  ``X-Forwarded-For`` and ``Forwarded`` (RFC 7239 ``for=``). In each, the list is
  walked from the right (the entry the proxy appended) past entries that are trusted
  proxies themselves; the first other one is the client (all trusted: the left-most).
  An entry that is not an address (``unknown``, an obfuscated ``_name``) ends the walk
  with no client;
- when both headers are sent and name different clients, or the proxy sent neither,
  the client is unknown (``None``): it is not loopback, so it may not write without a
  token and does not see agents' names. A proxy appends to one of the two headers and
  passes the other on as the client sent it, so a header a client forged alone must
  not win: both must agree.

So behind a proxy on the same host, requests that came through it no longer count as
loopback by the proxy's address; only a client on loopback, as the proxy reports it,
does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["TrustedProxies", "forwarded_for", "x_forwarded_for"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(text: str) -> IPAddress | None:
    """An address from a header entry: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def x_forwarded_for(values: Sequence[str]) -> list[IPAddress | None]:
    """The addresses of ``X-Forwarded-For`` headers, left to right (``None``: not one)."""
    return [_ip(entry) for value in values for entry in value.split(",")]


def forwarded_for(values: Sequence[str]) -> list[IPAddress | None]:
    """The ``for=`` addresses of ``Forwarded`` headers (RFC 7239), left to right."""
    out: list[IPAddress | None] = []
    for value in values:
        for element in value.split(","):
            found: IPAddress | None = None
            for pair in element.split(";"):
                name, _, param = pair.partition("=")
                if name.strip().lower() == "for":
                    found = _ip(param)
                    break
            out.append(found)
    return out


class TrustedProxies:
    """The configured proxies and the client address they report (module docstring)."""

    __slots__ = ("_networks",)

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks = tuple(ipaddress.ip_network(n) for n in networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: IPAddress | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return address is not None and any(address in net for net in self._networks)

    def client(
        self, peer: str | None, forwarded: Sequence[str] = (), x_forwarded: Sequence[str] = ()
    ) -> str | None:
        """The client's address for a request from ``peer`` with these header values."""
        if not self._networks:
            return peer
        if not self.trusts(_ip(peer) if peer else None):
            return peer
        said = [
            self._walk(chain)
            for chain in (forwarded_for(forwarded), x_forwarded_for(x_forwarded))
            if chain
        ]
        if not said or any(client != said[0] for client in said):
            return None
        return said[0]

    def _walk(self, chain: list[IPAddress | None]) -> str | None:
        for address in reversed(chain):
            if address is None:
                return None
            if not self.trusts(address):
                return str(address)
        return str(chain[0])

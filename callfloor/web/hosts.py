"""The Host check: requests without a token must name this service (DNS rebinding).

A page on a foreign domain can make its name resolve to 127.0.0.1 (DNS rebinding): a
browser on the service's machine then sends that page's requests to the service as
same-origin, and reads the answers. Such a request names the foreign domain in its
``Host`` header, so every request that is not authenticated by a token
(:func:`~callfloor.web.auth.authenticated`) must name one of:

- the loopback names: ``localhost``, ``127.0.0.1`` (any 127.0.0.0/8 address) and ``::1``;
- the bound address (``--host`` / ``[http] host``), unless it is a wildcard
  (``0.0.0.0``, ``::``);
- the address the client connected to (the socket's local address: for a wildcard bind,
  the machine's own address the client reached);
- ``[http] allowed_hosts``: exact names, and ``*.example.com`` for every name under
  ``example.com``.

The port is not compared (a proxy or a port mapping changes it; a rebinding page is on
the service's port anyway), nor is case, nor a trailing dot. A request without a
``Host`` header (HTTP/1.0 tools) is not from a browser and passes. Any other gets
421 Misdirected Request from :func:`host_check`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from callfloor.web import auth
from callfloor.web.errors import json_error
from callfloor.web.hostnames import address_text, host_name

__all__ = ["HOSTS", "Hosts", "host_check", "host_name"]

LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS: Final = frozenset({"0.0.0.0", "::", ""})
_SHOWN: Final = 100  # characters of a refused Host named in the answer


class Hosts:
    """The ``Host`` names a request without a token may use (see the module docstring)."""

    __slots__ = ("_names", "_suffixes")

    def __init__(self, bound: str, allowed: Iterable[str] = ()) -> None:
        names = set(LOOPBACK_NAMES)
        suffixes: list[str] = []
        own = host_name(bound)
        if own is not None and own not in _WILDCARDS:
            names.add(own)
        for entry in allowed:
            if entry.startswith("*."):
                suffixes.append(entry[1:])  # ".example.com": names under it, not itself
            else:
                names.add(host_name(entry) or entry)
        self._names = frozenset(names)
        self._suffixes = tuple(suffixes)

    def allows(self, host: str | None, local_address: str | None = None) -> bool:
        """Whether a request with this ``Host`` header, received on a socket whose local
        address is ``local_address``, names this service."""
        if host is None or not host.strip():
            return True
        name = host_name(host)
        if name is None:
            return False
        if name in self._names or name.endswith(self._suffixes):
            return True
        if auth.is_loopback_peer(name):
            return True
        return local_address is not None and name == address_text(local_address)


HOSTS: web.AppKey[Hosts] = web.AppKey("hosts", Hosts)


def _local_address(request: web.Request) -> str | None:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and sockname:
        return str(sockname[0])
    return None


@web.middleware
async def host_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 421 to a request without a token whose ``Host`` names another service."""
    host = request.headers.get("Host")
    if auth.authenticated(request) or request.app[HOSTS].allows(host, _local_address(request)):
        return await handler(request)
    shown = (host or "")[:_SHOWN]
    refused = json_error(
        421,
        f"Host {shown!r} is not a name of this service: requests without a bearer token "
        "must name it (localhost, its address, or one of [http] allowed_hosts); add the "
        "name to [http] allowed_hosts if clients reach the service by it",
        need="allowed_host",
    )
    if request.body_exists:
        refused.force_close()  # the body is not read
    return refused

"""Access control: bearer tokens for writes and reads, the loopback rule, hidden agent names.

Every request needs one of three things (:func:`classify`):

- ``OPEN``: ``GET``/``HEAD`` of ``/healthz`` and ``/readyz``, for orchestrators;
- ``READ``: every other ``GET``/``HEAD`` (``/metrics`` included: Prometheus sends a
  bearer token with ``authorization`` in its scrape configuration);
- ``WRITE``: every other method (``POST /api/v1/events``, later alert
  acknowledgements): a new route that changes state is protected without being listed.

``WRITE`` with ``[http] write_tokens`` set needs ``Authorization: Bearer <one of
them>`` (401 otherwise); with none set, only a loopback peer may write (403 for any
other). ``READ`` with ``[http] read_tokens`` set needs one of them (401); with none
set, reads are open, but a peer beyond loopback is not shown agents' display names
(:mod:`~callfloor.web.redact`). A write token does not grant reads, nor a read
token writes. Tokens are compared in constant time (:class:`Tokens`).

A browser holds a *session* instead (:mod:`~callfloor.web.sessions`): a cookie per
token kind, had once for a token. A read session stands for a read token; a write
through a write session also needs the session's CSRF token (``X-CSRF-Token``). Any
write without a bearer token whose ``Origin`` names another host than the request's is
refused (403): a page of another site cannot write through a visitor's browser.

Some routes need something else than their method says (:data:`ROUTE_NEEDS`: the login
page and its assets are open, the token exchange carries its credential in its body);
a page route (:data:`PAGES`) refused for want of a read credential is redirected to the
login page rather than answered with JSON.

"Loopback" is said of the client: the peer address, or behind a proxy listed in
``[http] trusted_proxies`` the address that proxy reports
(:mod:`~callfloor.web.proxies`). A request that shows a configured token or a valid
session cookie is :func:`authenticated`: the Host check (:mod:`~callfloor.web.hosts`)
does not apply to it (a session cookie is only ever sent to the host that set it).

Agents' display names follow a :class:`~callfloor.processors.views.NamePolicy` that the
middleware decides per request (:func:`name_policy`); every read that can carry a name
takes it as a parameter.

The start-up rules of ``callfloor serve`` live here too, as pure functions:
:func:`refusal` (a bind beyond loopback without write tokens) and :func:`notes` (the
lines logged once listening).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from callfloor.config import HttpConfig
from callfloor.processors.views import NamePolicy
from callfloor.web import redact
from callfloor.web.errors import json_error
from callfloor.web.hostnames import host_name
from callfloor.web.proxies import TrustedProxies
from callfloor.web.sessions import Grant, SessionKeys, cookie_name, token_fingerprint

__all__ = [
    "ACCESS",
    "Access",
    "Need",
    "Tokens",
    "access_control",
    "authenticated",
    "bearer_token",
    "classify",
    "client_address",
    "is_loopback_host",
    "is_loopback_peer",
    "name_policy",
    "notes",
    "refusal",
    "session_grant",
]

OPEN_ROUTES: Final = frozenset({"healthz", "readyz"})
CSRF_HEADER: Final = "X-CSRF-Token"
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_HOSTS: Final = "127.0.0.1, ::1 or localhost"


class Need(enum.Enum):
    """What a request must show to be served."""

    OPEN = "open"
    READ = "read"
    WRITE = "write"
    OPERATE = "operate"  # alert acknowledgements and silences: an operator's token


# Routes that need something else than their method says, by route name. A module that
# adds such a route registers it here (extend by registration).
ROUTE_NEEDS: dict[str, Need] = {}
# HTML page routes: refused for want of a read credential, they redirect to the login page.
PAGES: set[str] = set()


def classify(method: str, route: str | None) -> Need:
    """What a request with this method to this named route needs.

    Unknown paths and wrong methods are classified like any other request, so
    that nobody learns which routes exist without the token the method needs.
    """
    special = ROUTE_NEEDS.get(route) if route is not None else None
    if special is not None and method != "OPTIONS":
        return special
    if method not in READ_METHODS:
        return Need.WRITE
    if route in OPEN_ROUTES and method != "OPTIONS":
        return Need.OPEN
    return Need.READ


def is_loopback_peer(address: str | None) -> bool:
    """Whether a peer address is loopback (127.0.0.0/8, ::1, or IPv4-mapped 127.x)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    """Whether a listen address reaches loopback only.

    ``localhost`` and loopback literals do; everything else (``0.0.0.0``, ``::``,
    an interface address, any other name, which may resolve anywhere) does not.
    """
    return host.strip().lower() == "localhost" or is_loopback_peer(host.strip("[] "))


class Tokens:
    """A set of bearer tokens, checked in constant time.

    Each token is kept as its SHA-256 digest and a presented token is hashed the same
    way, so every comparison is of 32 bytes: neither a token's content nor its length
    shows in the time an answer takes. Every token is compared, matched or not.
    """

    __slots__ = ("_digests",)

    def __init__(self, tokens: Iterable[str]) -> None:
        self._digests = tuple(_digest(t) for t in tokens)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def matches(self, presented: str) -> bool:
        """Whether ``presented`` is one of the tokens."""
        given = _digest(presented)
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(digest, given)
        return found


def _digest(token: str) -> bytes:
    # surrogateescape: aiohttp decodes header bytes as UTF-8 with it; any token hashes.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class _Malformed(str):
    """An Authorization header that is not ``Bearer <token>`` (what it is instead)."""


def bearer_token(header: str | None) -> str | _Malformed | None:
    """The token of an ``Authorization: Bearer <token>`` header.

    ``None`` without the header (or with an empty one); a :class:`_Malformed` (a
    ``str`` saying what was wrong) when it is not a bearer token. The scheme is
    case-insensitive (RFC 7235).
    """
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        if scheme.isascii() and scheme.isalpha() and len(scheme) <= 12:
            return _Malformed(f"the Authorization scheme is {scheme!r}, not Bearer")
        # Not a scheme's name: perhaps the token itself sent without "Bearer ", which is
        # never echoed (answers and access logs may be seen by others).
        return _Malformed("the Authorization header is not 'Bearer <token>'")
    token = token.strip()
    if not token:
        return _Malformed("the Authorization header names no token after Bearer")
    return token


class Access:
    """The access rules of one application (built from ``[http]``)."""

    __slots__ = ("operator_names", "operators", "proxies", "read", "sessions", "write")

    def __init__(
        self,
        write_tokens: Iterable[str] = (),
        read_tokens: Iterable[str] = (),
        trusted_proxies: Iterable[str] = (),
        operator_tokens: Iterable[tuple[str, str]] = (),
    ) -> None:
        operator_tokens = tuple(operator_tokens)
        self.operators = [(name, Tokens((token,))) for name, token in operator_tokens]
        write_tokens = tuple(write_tokens)
        read_tokens = tuple(read_tokens)
        self.write = Tokens(write_tokens)
        self.read = Tokens(read_tokens)
        self.proxies = TrustedProxies(trusted_proxies)
        self.sessions = SessionKeys(
            {
                "read": read_tokens,
                "write": write_tokens,
                "operator": tuple(token for _, token in operator_tokens),
            }
        )
        # A browser session of an operator names the operator by its token's fingerprint.
        self.operator_names = {token_fingerprint(token): name for name, token in operator_tokens}

    def kinds_of(self, token: str) -> list[str]:
        """The kinds (``read``, ``write``) a presented token is one of (constant time)."""
        kinds = []
        if self.read.matches(token):
            kinds.append("read")
        if self.write.matches(token):
            kinds.append("write")
        if any(tokens.matches(token) for _, tokens in self.operators):
            kinds.append("operator")
        return kinds

    @classmethod
    def from_config(cls, http: HttpConfig) -> Access:
        """The rules ``[http] write_tokens``, ``read_tokens`` and ``trusted_proxies`` set."""
        return cls(http.write_tokens, http.read_tokens, http.trusted_proxies, http.operator_tokens)

    def operator(self, authorization: str | None, peer: str | None) -> str | None:
        """Who an operator command comes from (its token's name), or None.

        With no ``[http] operator_tokens`` and no write tokens, loopback is the operator
        (``"local"``), as loopback is the producer then.
        """
        if not self.operators:
            if not self.write and not self.read and is_loopback_peer(peer):
                return "local"
            return None
        token = bearer_token(authorization)
        if token is None or isinstance(token, _Malformed):
            return None
        found = None
        for name, tokens in self.operators:  # every one compared: the time tells nothing
            if tokens.matches(token) and found is None:
                found = name
        return found

    def shows_token(self, authorization: str | None) -> bool:
        """Whether the ``Authorization`` header carries one of the tokens (either kind)."""
        token = bearer_token(authorization)
        if token is None or isinstance(token, _Malformed):
            return False
        # Both compared whatever the first said: the time does not tell which kind matched.
        return self.write.matches(token) | self.read.matches(token)

    def refuse(
        self, need: Need, authorization: str | None, peer: str | None, what: str
    ) -> web.Response | None:
        """The 401 or 403 answer for a request, or ``None`` when it may be served.

        ``what`` names the request in the message (``POST /api/v1/events``).
        """
        if need is Need.OPEN:
            return None
        if need is Need.OPERATE:
            if self.operator(authorization, peer) is not None:
                return None
            if not self.operators:
                return json_error(
                    403,
                    f"{what} is an operator command: configure [http] operator_tokens "
                    "(name = token) and send Authorization: Bearer <token>",
                )
            status = 401 if authorization is None else 403
            return json_error(
                status,
                f"{what} needs an operator token of [http] operator_tokens "
                "(a read or write token is not enough)",
            )
        if need is Need.WRITE:
            tokens, key = self.write, "write_tokens"
            if not tokens:
                if is_loopback_peer(peer):
                    return None
                return json_error(
                    403,
                    f"{what} is a write: with no [http] write_tokens configured, writes are "
                    "accepted from loopback (127.0.0.1, ::1) only; configure [http] "
                    "write_tokens and send Authorization: Bearer <token>"
                    + (
                        " (behind a proxy of [http] trusted_proxies, the client is the "
                        "address it reports in X-Forwarded-For or Forwarded)"
                        if self.proxies
                        else ""
                    ),
                    need="write_token",
                )
        else:
            tokens, key = self.read, "read_tokens"
            if not tokens:
                return None
        scope = need.value
        token = bearer_token(authorization)
        if token is None:
            return json_error(
                401,
                f"missing bearer token: {what} needs Authorization: Bearer <token> "
                f"with one of [http] {key}",
                {"WWW-Authenticate": f'Bearer realm="callfloor", scope="{scope}"'},
                need=f"{scope}_token",
            )
        if isinstance(token, _Malformed):
            return json_error(
                401,
                f"{token}: {what} needs Authorization: Bearer <token> with one of [http] {key}",
                {
                    "WWW-Authenticate": f'Bearer realm="callfloor", scope="{scope}", '
                    'error="invalid_request"'
                },
                need=f"{scope}_token",
            )
        if not tokens.matches(token):
            return json_error(
                401,
                f"wrong bearer token: {what} needs one of [http] {key}",
                {
                    "WWW-Authenticate": f'Bearer realm="callfloor", scope="{scope}", '
                    'error="invalid_token"'
                },
                need=f"{scope}_token",
            )
        return None

    def hides_names(self, peer: str | None) -> bool:
        """Whether agents' display names are withheld from this (authorised) reader.

        A holder of a read token (or a read session) sees them; without read tokens, a
        loopback peer does and any other does not.
        """
        return not self.read and not is_loopback_peer(peer)


ACCESS: web.AppKey[Access] = web.AppKey("access", Access)
_GRANTS: Final = web.RequestKey("callfloor.grants", dict[str, Grant | None])
_NAMES: Final = web.RequestKey("callfloor.names", NamePolicy)
OPERATOR: Final = web.RequestKey("callfloor.operator", str)
"""Who sent an operator command (the name of its token; "local" on open loopback)."""


def remember_grant(request: web.Request, kind: str, grant: Grant | None) -> None:
    """Note a session just issued, so the rest of this request sees it."""
    grants = request.get(_GRANTS)
    if grants is None:
        grants = request[_GRANTS] = {}
    grants[kind] = grant


def session_grant(request: web.Request, kind: str) -> Grant | None:
    """The request's valid session cookie of ``kind`` (verified once per request)."""
    grants = request.get(_GRANTS)
    if grants is None:
        grants = request[_GRANTS] = {}
    if kind not in grants:
        grants[kind] = request.app[ACCESS].sessions.verify(
            kind, request.cookies.get(cookie_name(kind))
        )
    return grants[kind]


def authenticated(request: web.Request) -> bool:
    """Whether the request shows a credential of this service: a configured bearer token
    of either kind, or a valid session cookie. The Host check is for requests without
    one."""
    access = request.app[ACCESS]
    if access.shows_token(request.headers.get("Authorization")):
        return True
    return any(session_grant(request, kind) is not None for kind in access.sessions.kinds())


def name_policy(request: web.Request) -> NamePolicy:
    """Whether this request's answer may show agents' display names: as the access
    middleware decided, and ``HIDE`` for any request it did not see."""
    policy: NamePolicy = request.get(_NAMES, NamePolicy.HIDE)
    return policy


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _port(authority: str, default: int | None) -> int | None:
    """The port of a ``host[:port]`` (``[v6]:port``), ``default`` when it names none;
    ``None`` when it is not a number."""
    text = authority.strip()
    if text.startswith("["):
        text = text.partition("]")[2]
    elif text.count(":") > 1:
        return default  # an IPv6 address without brackets names no port
    _, colon, port = text.rpartition(":")
    if not colon:
        return default
    return int(port) if port.isdigit() else None


def _origin_refusal(request: web.Request) -> web.Response | None:
    """A 403 for a write whose ``Origin`` names another origin than the request's: another
    host, or another port of it (a page of another service on the same machine).

    A port left out is the default of the Origin's scheme on both sides: behind a proxy
    terminating TLS, ``https://floor.example`` and ``Host: floor.example`` are one origin.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    scheme, sep, rest = origin.partition("://")
    named = host_name(rest) if sep else None
    host_header = request.headers.get("Host") or ""
    host = host_name(host_header)
    default = _DEFAULT_PORTS.get(scheme.lower())
    if (
        named is not None
        and named == host
        and _port(rest, default) == _port(host_header, default)
        and _port(rest, default) is not None
    ):
        return None
    return json_error(
        403,
        f"{request.method} {request.path} is a write from a page of another origin: a "
        "browser may write only from this service's own pages",
        need="same_origin",
    )


def _session_write(
    request: web.Request, access: Access, kind: str = "write"
) -> web.Response | None:
    """A write made with a session: None when its CSRF token matches, else a 403."""
    grant = session_grant(request, kind)
    assert grant is not None
    if access.sessions.csrf_matches(grant, request.headers.get(CSRF_HEADER)):
        return None
    return json_error(
        403,
        f"{request.method} {request.path} through a browser session needs the session's "
        f"CSRF token in {CSRF_HEADER} (GET /api/v1/session gives it to the page)",
        need="csrf_token",
    )


def _login_redirect(request: web.Request) -> web.Response:
    """A page refused for want of a read credential: to the login page, back here after."""
    target = request.path + (f"?{request.query_string}" if request.query_string else "")
    return web.Response(
        status=303,
        headers={"Location": "/login?next=" + quote(target, safe=""), "Cache-Control": "no-store"},
    )


def client_address(request: web.Request) -> str | None:
    """The client's address: the peer's, or behind a trusted proxy the one it reports
    (``None`` when it does not say; see :mod:`~callfloor.web.proxies`)."""
    proxies = request.app[ACCESS].proxies
    if not proxies:
        return request.remote
    headers = request.headers
    return proxies.client(
        request.remote, headers.getall("Forwarded", ()), headers.getall("X-Forwarded-For", ())
    )


@web.middleware
async def access_control(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what the request may not do (401/403 JSON); hide names it may not see."""
    access = request.app[ACCESS]
    route = request.match_info.route.name
    peer = client_address(request)
    need = classify(request.method, route)
    authorization = request.headers.get("Authorization")
    what = f"{request.method} {request.path}"
    refused: web.Response | None
    if authorization is None and need is Need.READ and session_grant(request, "read"):
        refused = None  # a read session stands for a read token
    elif authorization is None and need is Need.WRITE and session_grant(request, "write"):
        refused = _origin_refusal(request) or _session_write(request, access)
    elif authorization is None and need is Need.OPERATE and session_grant(request, "operator"):
        refused = _origin_refusal(request) or _session_write(request, access, "operator")
        grant = session_grant(request, "operator")
        assert grant is not None
        request[OPERATOR] = access.operator_names.get(grant.fingerprint, "operator")
    else:
        refused = access.refuse(need, authorization, peer, what)
        if refused is None and need is Need.OPERATE:
            request[OPERATOR] = access.operator(authorization, peer) or ""
            if authorization is None:
                refused = _origin_refusal(request)  # loopback commands without tokens
        if refused is None and need is Need.WRITE and authorization is None:
            refused = _origin_refusal(request)  # loopback writes without tokens
        browsing = authorization is None and request.method in ("GET", "HEAD")
        if refused is not None and refused.status == 401 and route in PAGES and browsing:
            refused = _login_redirect(request)
    if refused is not None:
        if request.body_exists:
            # The body is not read: the connection ends instead of aiohttp reading up to
            # [limits] max_body from a client that may not write.
            refused.force_close()
        return refused
    shown = need is Need.READ and not access.hides_names(peer)
    request[_NAMES] = NamePolicy.SHOW if shown else NamePolicy.HIDE
    response = await handler(request)
    if route == "metrics" and not shown:
        redact.hide_metrics_names(response)
    return response


# ---------------------------------------------------------------- start-up rules


def refusal(host: str, http: HttpConfig) -> str | None:
    """Why ``serve`` must not listen on ``host`` with this ``[http]``, or ``None``.

    Beyond loopback without write tokens, the service could take events from no
    producer but itself: a configuration mistake, stopped before it listens.
    """
    if is_loopback_host(host) or http.write_tokens:
        return None
    return (
        f"refusing to listen on {host} without [http] write_tokens: a bind beyond "
        f'loopback needs write tokens (e.g. write_tokens = ["env:CALLFLOOR_TOKEN"]), '
        f"or listen on {LOOPBACK_HOSTS} (--host)"
    )


def notes(host: str, http: HttpConfig) -> list[str]:
    """The access log lines for a service listening on ``host`` (``event key=value``)."""
    lines = []
    if not http.write_tokens:
        lines.append(
            "access writes=loopback_only reason=no_write_tokens "
            "detail='writes are open to loopback only; set [http] write_tokens to take "
            "them from elsewhere'"
        )
    if not http.read_tokens and not is_loopback_host(host):
        lines.append(
            "access reads=open agent_names=hidden_beyond_loopback reason=no_read_tokens "
            "detail='agents display names are shown to loopback peers only; set [http] "
            "read_tokens to show them to token holders'"
        )
    if not is_loopback_host(host):
        names = ",".join(http.allowed_hosts) or "none"
        lines.append(
            f"access host_check=on allowed_hosts={names} detail='requests without a token "
            "must name localhost, the address they reached or one of [http] allowed_hosts "
            "in Host (421 otherwise)'"
        )
    if http.trusted_proxies:
        lines.append(
            f"access trusted_proxies={','.join(http.trusted_proxies)} detail='requests from "
            "these are judged by the client they report in X-Forwarded-For / Forwarded'"
        )
    return lines

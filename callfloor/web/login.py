"""Session routes: a token exchanged for cookies, the session's state, signed links.

- ``POST /api/v1/session`` with ``{"token": "...", "ttl_s": 604800}`` (JSON only, so no
  other site's form can post it): sets a cookie for each kind the token is one of
  (``callfloor_read``, ``callfloor_write``) and answers the session. Open: the body
  carries the credential. A wrong token is a 401.
- ``GET /api/v1/session``: the session's kinds and expiries, the CSRF token of a write
  session, and whether the reader is shown agents' names. Open (it shows the caller
  only what its own cookies hold).
- ``DELETE /api/v1/session``: forget the cookies.
- ``POST /api/v1/session/links`` with ``{"path": "/wallboard?site=sh", "ttl_s": ...}``
  (a read: a read token or session): a signed link for a screen that cannot type. The
  link's ``access=...`` is exchanged for a read cookie (:func:`link_exchange`) and the
  browser is sent on to the path without it, so it never stays in the address bar, in
  the history or in a bookmark made afterwards.

See :mod:`~callfloor.web.sessions` for what a cookie holds.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from callfloor.web import auth
from callfloor.web.errors import json_error, json_response
from callfloor.web.pages import PAGE_ROUTES, SECURITY_HEADERS
from callfloor.web.sessions import (
    DEFAULT_LINK_S,
    DEFAULT_SESSION_S,
    MAX_LINK_S,
    MAX_SESSION_S,
    Grant,
    cookie_name,
)

__all__ = ["add_routes", "link_exchange"]

LINK_PARAM: Final = "access"
_MAX_BODY: Final = 4096
_PAGE_PATHS: Final = frozenset(path for path, _, _ in PAGE_ROUTES)


class _Exchange(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    ttl_s: float = DEFAULT_SESSION_S


class _LinkRequest(msgspec.Struct, forbid_unknown_fields=True):
    path: str = "/wallboard"
    ttl_s: float = DEFAULT_LINK_S


async def _json_body(request: web.Request, kind: type[Any]) -> Any:
    """The request's JSON body as ``kind``; a 4xx answer (raised) if it is not."""
    if request.content_type != "application/json":
        raise _Refused(json_error(415, "send the body as application/json", need="json"))
    body = await request.content.read(_MAX_BODY + 1)
    if len(body) > _MAX_BODY:
        raise _Refused(json_error(413, f"the body is larger than {_MAX_BODY} bytes"))
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise _Refused(json_error(400, f"invalid body: {exc}")) from None
    except msgspec.DecodeError:
        raise _Refused(json_error(400, "the body is not JSON")) from None


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _secure(request: web.Request) -> bool:
    return request.secure


def _set(
    response: web.StreamResponse, request: web.Request, kind: str, value: str, until: int
) -> None:
    now = time.time()
    response.set_cookie(
        cookie_name(kind),
        value,
        max_age=max(0, int(until - now)),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )


def _state(request: web.Request) -> dict[str, Any]:
    access = request.app[auth.ACCESS]
    kinds: dict[str, Any] = {}
    for kind in access.sessions.kinds():
        grant = auth.session_grant(request, kind)
        if grant is None:
            continue
        entry: dict[str, Any] = {"expires_at": grant.expires}
        if kind != "read":
            entry["csrf"] = access.sessions.csrf(grant)
        kinds[kind] = entry
    return {
        "kinds": kinds,
        "read_tokens": bool(access.read),
        "write_tokens": bool(access.write),
        "reads_open": not access.read,
    }


async def exchange(request: web.Request) -> web.Response:
    """Exchange a token for session cookies (see the module docstring)."""
    access = request.app[auth.ACCESS]
    if request.content_type != "application/json":
        return json_error(415, 'send the token as application/json: {"token": "..."}', need="json")
    try:
        body: _Exchange = await _json_body(request, _Exchange)
    except _Refused as refused:
        return refused.response
    if not access.sessions.kinds():
        return json_error(
            400,
            "no tokens are configured ([http] read_tokens, write_tokens): the pages are open "
            "and need no session",
            need="none",
        )
    if not (math.isfinite(body.ttl_s) and 60 <= body.ttl_s <= MAX_SESSION_S):
        return json_error(400, f"ttl_s must be between 60 and {int(MAX_SESSION_S)} seconds")
    kinds = access.kinds_of(body.token)
    if not kinds:
        return json_error(
            401,
            "wrong token: it is none of [http] read_tokens or write_tokens",
            need="token",
        )
    response = json_response({})
    for kind in kinds:
        value, until = access.sessions.issue(kind, body.token, body.ttl_s)
        _set(response, request, kind, value, until)
        grant = access.sessions.verify(kind, value)
        auth.remember_grant(request, kind, grant)
    response.body = msgspec.json.encode(_state(request))
    response.headers["Cache-Control"] = "no-store"
    return response


async def state(request: web.Request) -> web.Response:
    """The caller's session: kinds, expiries, CSRF token (see the module docstring)."""
    answer = _state(request)
    answer["names"] = (
        "show" if not request.app[auth.ACCESS].hides_names(auth.client_address(request)) else "hide"
    )
    return json_response(answer, headers={"Cache-Control": "no-store"})


async def logout(request: web.Request) -> web.Response:
    """Forget the session cookies."""
    response = json_response({"kinds": {}}, headers={"Cache-Control": "no-store"})
    for kind in ("read", "write", *request.app[auth.ACCESS].sessions.kinds()):
        response.del_cookie(cookie_name(kind), path="/")
    return response


async def links(request: web.Request) -> web.Response:
    """A signed link to a page for a screen that cannot type (a read)."""
    access = request.app[auth.ACCESS]
    if not access.read:
        return json_error(
            400, "reads are open (no [http] read_tokens): a page needs no link", need="none"
        )
    try:
        body: _LinkRequest = await _json_body(request, _LinkRequest)
    except _Refused as refused:
        return refused.response
    path, _, query = body.path.partition("?")
    if path not in _PAGE_PATHS:
        return json_error(
            400, f"path must be one of the pages {sorted(_PAGE_PATHS)}, got {path[:80]!r}"
        )
    if not (math.isfinite(body.ttl_s) and 60 <= body.ttl_s <= MAX_LINK_S):
        return json_error(400, f"ttl_s must be between 60 and {int(MAX_LINK_S)} seconds")
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != LINK_PARAM]
    token = auth.bearer_token(request.headers.get("Authorization"))
    grant = auth.session_grant(request, "read")
    if isinstance(token, str) and token and access.read.matches(token):
        value, until = access.sessions.link_for_token("read", token, body.ttl_s)
    elif grant is not None:
        value, until = access.sessions.link(grant, body.ttl_s)
    else:  # pragma: no cover - access control let a read through without a read credential
        return json_error(401, "a link needs a read token or a read session", need="read_token")
    params.append((LINK_PARAM, value))
    return json_response(
        {"url": f"{path}?{urlencode(params)}", "expires_at": until},
        headers={"Cache-Control": "no-store"},
    )


def _without_link(request: web.Request) -> str:
    params = [(k, v) for k, v in request.query.items() if k != LINK_PARAM]
    return request.path + (f"?{urlencode(params)}" if params else "")


_HOP = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer"><meta name="next" content="{next}">
<meta http-equiv="refresh" content="0;url={next}"><title>callfloor</title>
<script src="/static/hop.js"></script></head>
<body><p><a href="{next}">Continue</a></p></body></html>
"""


@web.middleware
async def link_exchange(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A page opened with a signed link: the link is exchanged for a read cookie and the
    browser goes on to the page without it (a page of this origin navigates, so the
    ``SameSite=Strict`` cookie goes with it however the link was opened)."""
    value = request.query.get(LINK_PARAM)
    if value is None or request.method not in ("GET", "HEAD"):
        return await handler(request)
    if request.match_info.route.name not in auth.PAGES:
        return await handler(request)
    sessions = request.app[auth.ACCESS].sessions
    grant: Grant | None = sessions.verify_link("read", value)
    if grant is None:
        return json_error(
            401,
            "this link is not valid: it has expired, or the token it was made under is no "
            "longer configured; ask for a new link",
            need="read_token",
        )
    target = _without_link(request)
    escaped = target.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    response = web.Response(
        text=_HOP.format(next=escaped),
        content_type="text/html",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
    )
    _set(response, request, "read", sessions.reissue(grant, grant.expires), grant.expires)
    return response


def add_routes(app: web.Application) -> None:
    """Register the session routes and their access needs."""
    app.router.add_post("/api/v1/session", exchange, name="session_exchange")
    app.router.add_get("/api/v1/session", state, name="session_state")
    app.router.add_delete("/api/v1/session", logout, name="session_logout")
    app.router.add_post("/api/v1/session/links", links, name="session_links")
    auth.ROUTE_NEEDS["session_exchange"] = auth.Need.OPEN
    auth.ROUTE_NEEDS["session_state"] = auth.Need.OPEN
    auth.ROUTE_NEEDS["session_logout"] = auth.Need.OPEN
    auth.ROUTE_NEEDS["session_links"] = auth.Need.READ

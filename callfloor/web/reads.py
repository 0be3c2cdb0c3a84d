"""Read routes: the document, queues, agents, violations, metrics.

Reads never move the processor clock: it moves once per tick, so every reader
within a tick shares one document, encoded once (``Floor.cached``). ``as_of`` says
which instant an answer describes. One queue or one agent renders only that entity.

Sites served *stale* (their partition is no longer applied by this process: its lease
could not be renewed) are marked beside the document, never in its SPEC §7 keys: a
top-level ``stale`` object (site -> partition, since, as_of) and a ``Callfloor-Stale``
header (the earliest since), both only while some site answered is stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import web

from callfloor.processors.views import NamePolicy
from callfloor.web.auth import name_policy
from callfloor.web.errors import json_body, json_error, json_response
from callfloor.web.floor import Floor, floor_of

if TYPE_CHECKING:
    from callfloor.processors.views import Staleness

STALE_HEADER: Final = "Callfloor-Stale"

_ACTIVE = {"": None, "true": True, "1": True, "false": False, "0": False}


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition at the processor clock."""
    from callfloor.metrics import CONTENT_TYPE

    body = floor_of(request).metrics_body()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _stale_header(stale: Mapping[str, Staleness]) -> dict[str, str] | None:
    """``Callfloor-Stale: <earliest since>`` while some site answered is stale."""
    if not stale:
        return None
    since = min(mark.since for mark in stale.values())
    return {STALE_HEADER: msgspec.json.encode(since).decode()}


def _with_stale(body: bytes, stale: Mapping[str, Staleness]) -> bytes:
    """An encoded JSON object with a top-level ``stale`` object added, if any is stale."""
    if not stale:
        return body
    return body[:-1] + b',"stale":' + msgspec.json.encode(stale) + b"}"


def _floor_body(floor: Floor, name: str, build: Callable[[], bytes]) -> web.Response:
    """A whole-floor answer (cached per tick) with its stale marks."""
    stale = floor.view.stale()
    body = floor.cached(name, lambda: _with_stale(build(), stale))
    return json_body(body, headers=_stale_header(stale))


async def snapshot(request: web.Request) -> web.Response:
    """The SPEC §7 document, live (stale sites marked beside it)."""
    floor = floor_of(request)
    return _floor_body(floor, "snapshot", lambda: msgspec.json.encode(floor.document()))


def _queues(floor: Floor) -> bytes:
    doc = floor.document()
    return msgspec.json.encode({"as_of": doc.as_of, "queues": doc.queues, "sites": doc.sites})


async def queues(request: web.Request) -> web.Response:
    """Queues and sites of the live document."""
    floor = floor_of(request)
    return _floor_body(floor, "queues", lambda: _queues(floor))


def _one(as_of: float, mark: Staleness | None, entry: dict[str, Any]) -> web.Response:
    """One entity's answer: at its partition's frozen as_of, marked, when it is stale."""
    if mark is None:
        return json_response({"as_of": as_of, **entry})
    return json_response(
        {"as_of": mark.as_of, **entry, "stale": mark}, headers=_stale_header({"": mark})
    )


async def queue(request: web.Request) -> web.Response:
    """One queue (only it is rendered), 404 if unknown."""
    view = floor_of(request).view
    name = request.match_info["name"]
    found = view.queue(name)
    if found is None:
        return json_error(404, f"unknown queue {name!r}")
    return _one(
        view.as_of,
        view.stale().get(found.site),
        {"name": name, "site": found.site, "windows": found.windows, "live": found.live},
    )


def _agents(floor: Floor, names: NamePolicy) -> bytes:
    view = floor.view
    doc = floor.document()
    agents: dict[str, Any] = {}
    for name, agent in doc.agents.items():
        entry = msgspec.structs.asdict(agent)
        info = view.agent_info(name, names=names)
        if info is not None:
            entry.update(
                display_name=info.display_name, team=info.team, site=info.site, queues=info.queues
            )
        agents[name] = entry
    return msgspec.json.encode({"as_of": doc.as_of, "agents": agents})


async def agents(request: web.Request) -> web.Response:
    """Agents of the live document with their display name (as the reader may see it),
    team, site and queues."""
    floor = floor_of(request)
    names = name_policy(request)
    return _floor_body(floor, f"agents:{names}", lambda: _agents(floor, names))


async def agent(request: web.Request) -> web.Response:
    """One agent with its identity and violations (only it is rendered), 404 if unknown."""
    view = floor_of(request).view
    name = request.match_info["name"]
    found = view.agent_detail(name, names=name_policy(request))
    if found is None:
        return json_error(404, f"unknown agent {name!r}")
    return _one(view.as_of, view.stale().get(found.site), msgspec.structs.asdict(found))


def _violations(floor: Floor, active: bool | None) -> bytes:
    doc = floor.document()
    items = doc.violations
    if active is not None:
        items = [v for v in items if (v.ended_at is None) == active]
    return msgspec.json.encode({"as_of": doc.as_of, "violations": items})


async def violations(request: web.Request) -> web.Response:
    """Violations; ``?active=true`` keeps the active ones, ``false`` the ended ones."""
    floor = floor_of(request)
    raw = request.query.get("active", "").lower()
    if raw not in _ACTIVE:
        return json_error(400, f"active must be true or false, got {raw[:40]!r}")
    active = _ACTIVE[raw]
    return _floor_body(floor, f"violations:{active}", lambda: _violations(floor, active))

"""Agents' display names withheld from answers (see :mod:`~callfloor.web.auth` for when).

What is withheld is the person's name an ``agent_state`` event carried (its
``name``): ``display_name`` is ``null`` in ``/api/v1/agents`` and
``/api/v1/agents/{name}``, and the ``name`` label of ``callfloor_agent_info`` is
empty in ``/metrics``. Agent ids stay (they key the state document, whose shape the
SPEC fixes), and so do team, site and queues, which describe the floor rather than
the person. Answers are rewritten after the route built them, so the routes and
their per-tick caches stay the same for every reader.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
from aiohttp import web

__all__ = ["hide_agent_info_names", "hide_display_names", "hide_names"]

_INFO: Final = b"callfloor_agent_info{"
# A callfloor_agent_info sample up to its name label's value, walking whole labels
# (name="value", the value escaped: \\, \", \n), so a value that itself holds `name="`
# is never taken for the label; then the value, replaced by nothing. One pass in C.
_INFO_NAME: Final = re.compile(
    rb'^(callfloor_agent_info\{(?:[A-Za-z_][A-Za-z0-9_]*="(?:[^"\\\n]|\\.)*",)*?name=")'
    rb'(?:[^"\\\n]|\\.)*"',
    re.MULTILINE,
)

# The last whole-floor agents answer and its rewrite: the route answers the same bytes
# object for a whole tick, so every reader of a tick shares one rewrite.
_last_agents: tuple[bytes, bytes] = (b"", b"")


def hide_names(route: str | None, response: web.StreamResponse) -> None:
    """Withhold display names from a successful answer of ``route`` (in place)."""
    if route not in ("agents", "agent", "metrics"):
        return
    if not isinstance(response, web.Response) or response.status != 200:
        return
    body = response.body
    if not isinstance(body, bytes):
        return
    if route == "metrics":
        response.body = hide_agent_info_names(body)
    elif route == "agents":
        response.body = _agents(body)
    else:
        response.body = hide_display_names(body, one=True)


def _agents(body: bytes) -> bytes:
    global _last_agents
    if _last_agents[0] is not body:
        _last_agents = (body, hide_display_names(body, one=False))
    return _last_agents[1]


def hide_display_names(body: bytes, *, one: bool) -> bytes:
    """An agents answer (``one``: a single agent's) with every ``display_name`` null."""
    data: dict[str, Any] = msgspec.json.decode(body)
    if one:
        if "display_name" in data:
            data["display_name"] = None
    else:
        for entry in data.get("agents", {}).values():
            if "display_name" in entry:
                entry["display_name"] = None
    return msgspec.json.encode(data)


def hide_agent_info_names(body: bytes) -> bytes:
    """A text exposition with the ``name`` label of ``callfloor_agent_info`` emptied."""
    first = body.find(_INFO)
    if first < 0:
        return body  # per-agent series off: no names in the exposition
    # A family's samples are one block: only that slice is searched.
    start = body.rfind(b"\n", 0, first) + 1
    end = body.find(b"\n", body.rfind(_INFO))
    end = len(body) if end < 0 else end
    return body[:start] + _INFO_NAME.sub(rb'\1"', body[start:end]) + body[end:]

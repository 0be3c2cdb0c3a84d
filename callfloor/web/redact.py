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
# One label of a text-format label set: name="value", the value escaped (\\, \", \n).
_LABEL: Final = re.compile(rb'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,?)')

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
    # Only the family's own lines are rewritten (with per-agent series off there are
    # none): the rest of a large exposition is copied in slices, not split into lines.
    out: list[bytes] = []
    done = 0
    at = _next_info(body, 0)
    while at >= 0:
        end = body.find(b"\n", at)
        end = len(body) if end < 0 else end + 1
        out += (body[done:at], _blank_name(body[at:end]))
        done = end
        at = _next_info(body, end)
    if not out:
        return body
    out.append(body[done:])
    return b"".join(out)


def _next_info(body: bytes, start: int) -> int:
    """Where the next ``callfloor_agent_info`` sample starts, from the line start ``start``."""
    if body.startswith(_INFO, start):
        return start
    found = body.find(b"\n" + _INFO, start)
    return found + 1 if found >= 0 else -1


def _blank_name(line: bytes) -> bytes:
    # Walk the label set label by label: a value may itself contain `name="`.
    at = len(_INFO)
    parts = [line[:at]]
    while (label := _LABEL.match(line, at)) is not None:
        key, _value, comma = label.groups()
        parts.append(key + b'=""' + comma if key == b"name" else label.group(0))
        at = label.end()
    parts.append(line[at:])
    return b"".join(parts)

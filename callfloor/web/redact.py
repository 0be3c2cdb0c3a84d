"""Agents' display names withheld from the Prometheus exposition (see
:mod:`~callfloor.web.auth` for when).

What is withheld is the person's name an ``agent_state`` event carried (its
``name``). The JSON reads and the board streams never need this: their views take a
:class:`~callfloor.processors.views.NamePolicy` and leave the name out themselves. The
exposition is rendered once for every scraper, so for a reader who may not see names
the ``name`` label of ``callfloor_agent_info`` is emptied afterwards. Agent ids stay,
and so do team, site and queues, which describe the floor rather than the person.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
from aiohttp import web

__all__ = ["hide_agent_info_names", "hide_display_names", "hide_metrics_names"]

_INFO: Final = b"callfloor_agent_info{"
# A callfloor_agent_info sample up to its name label's value, walking whole labels
# (name="value", the value escaped: \\, \", \n), so a value that itself holds `name="`
# is never taken for the label; then the value, replaced by nothing. One pass in C.
_INFO_NAME: Final = re.compile(
    rb'^(callfloor_agent_info\{(?:[A-Za-z_][A-Za-z0-9_]*="(?:[^"\\\n]|\\.)*",)*?name=")'
    rb'(?:[^"\\\n]|\\.)*"',
    re.MULTILINE,
)


def hide_metrics_names(response: web.StreamResponse) -> None:
    """Withhold display names from a successful ``/metrics`` answer (in place)."""
    if not isinstance(response, web.Response) or response.status != 200:
        return
    body = response.body
    if isinstance(body, bytes):
        response.body = hide_agent_info_names(body)


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

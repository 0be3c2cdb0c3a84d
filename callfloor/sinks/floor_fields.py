"""The live floor as flat Redis hash fields, and the change message (pure, no I/O).

A script reads one value with one ``HGET``, so every number of a view is a field of its
own, named by its path in the API's JSON with dots: ``waiting``, ``longest_wait_s``,
``agents.available``, ``15m.service_level``, ``today.offered``. Values are text as
Redis keeps them: integers in decimal, floats in Python's shortest round-trip form
(``0.8333333333333334``), and the empty string for ``null`` (no value: a rate with no
calls in its window). ``json`` holds the whole answer the HTTP API gives for the same
entity at the same ``as_of``, for readers that want everything at once.

Every hash also carries ``name``, ``site`` (a site's own name for a site), ``as_of``
(the instant its values describe) and ``owner`` (the process that wrote it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from callfloor.processors.views import (
    AgentDetail,
    QueueInfo,
    QueueLive,
    QueueView,
    SiteLive,
    SiteView,
    ViolationChange,
    WindowStats,
)

NULL: Final = ""  # the value of a field whose JSON value is null

Fields = dict[str, str]


def text(value: object) -> str:
    """One value as a hash field: ints in decimal, floats round-trip, None as ``""``."""
    if value is None:
        return NULL
    if isinstance(value, bool):  # before int: a bool is an int
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def window_fields(windows: Mapping[str, WindowStats]) -> Fields:
    """``{label}.{stat}`` for every window and stat (``15m.service_level``, ...)."""
    out: Fields = {}
    for label, stats in windows.items():
        for name in stats.__struct_fields__:
            out[f"{label}.{name}"] = text(getattr(stats, name))
    return out


def live_fields(live: QueueLive | SiteLive) -> Fields:
    """The live values; agents by state as ``agents.{state}``."""
    out: Fields = {}
    for name in live.__struct_fields__:
        if name == "agents":
            for state, count in live.agents.items():
                out[f"agents.{state}"] = text(count)
        else:
            out[name] = text(getattr(live, name))
    return out


def _json(data: Any) -> str:
    return msgspec.json.encode(data).decode()


def queue_answer(name: str, view: QueueView, as_of: float) -> dict[str, Any]:
    """What ``GET /api/v1/queues/{name}`` answers for this view."""
    return {
        "as_of": as_of,
        "name": name,
        "site": view.site,
        "windows": view.windows,
        "live": view.live,
    }


def site_answer(name: str, view: SiteView, as_of: float) -> dict[str, Any]:
    """A site as ``GET /api/v1/queues`` lists it (its calendar included), with its name
    and ``as_of``."""
    return {"as_of": as_of, "name": name, **msgspec.structs.asdict(view)}


def agent_answer(detail: AgentDetail, as_of: float) -> dict[str, Any]:
    """What ``GET /api/v1/agents/{name}`` answers (display name included)."""
    return {"as_of": as_of, **msgspec.structs.asdict(detail)}


def queue_fields(
    name: str, view: QueueView, info: QueueInfo | None, as_of: float, owner: str
) -> Fields:
    """A queue's hash: identity, policy, live values, windows and the JSON answer."""
    out: Fields = {
        "name": name,
        "site": view.site,
        "as_of": text(as_of),
        "owner": owner,
    }
    if info is not None:
        out["channel"] = info.channel
        out["sl_threshold_s"] = text(info.sl_threshold_s)
        out["sl_target"] = text(info.sl_target)
    out.update(live_fields(view.live))
    out.update(window_fields(view.windows))
    out["json"] = _json(queue_answer(name, view, as_of))
    return out


def site_fields(name: str, view: SiteView, as_of: float, owner: str) -> Fields:
    """A site's hash: live values, roll-up windows and the JSON of the site."""
    out: Fields = {"name": name, "site": name, "as_of": text(as_of), "owner": owner}
    out.update(live_fields(view.live))
    out.update(window_fields(view.windows))
    out["timezone"] = view.timezone
    out["local_date"] = view.local_date
    out["interval_start"] = text(view.interval_start)
    out["json"] = _json(site_answer(name, view, as_of))
    return out


def agent_fields(detail: AgentDetail, as_of: float, owner: str) -> Fields:
    """An agent's hash: identity (display name included), state, today's counts."""
    active = sum(1 for v in detail.violations if v.ended_at is None)
    return {
        "name": detail.name,
        "site": detail.site,
        "as_of": text(as_of),
        "owner": owner,
        "display_name": text(detail.display_name),
        "team": text(detail.team),
        "queues": _json(detail.queues),
        "state": str(detail.state),
        "reason": text(detail.reason),
        "state_since": text(detail.state_since),
        "not_ready_today_s": text(detail.not_ready_today_s),
        "answered_today": text(detail.answered_today),
        "missed_today": text(detail.missed_today),
        "violations_active": text(active),
        "json": _json(agent_answer(detail, as_of)),
    }


class ChangeMessage(msgspec.Struct, kw_only=True):
    """What one write changed, published on ``{prefix}:floor:changes``.

    Names list what was written because it changed, appeared or was deleted (a
    deleted name's hash is gone: ``HGETALL`` answers nothing). ``resync`` is true
    when the write re-read the whole floor (every name is listed then).
    """

    as_of: float
    owner: str
    resync: bool
    queues: list[str]
    sites: list[str]
    agents: list[str]
    violations: list[ViolationChange]


def encode_message(
    *,
    as_of: float,
    owner: str,
    resync: bool,
    queues: Iterable[str],
    sites: Iterable[str],
    agents: Iterable[str],
    violations: list[ViolationChange],
) -> bytes:
    """The JSON of a :class:`ChangeMessage` (names sorted)."""
    return msgspec.json.encode(
        ChangeMessage(
            as_of=as_of,
            owner=owner,
            resync=resync,
            queues=sorted(queues),
            sites=sorted(sites),
            agents=sorted(agents),
            violations=violations,
        )
    )

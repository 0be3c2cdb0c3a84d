"""The alert API: the list, acknowledgements and silences (operator commands).

- ``GET /api/v1/alerts`` (read): every pending and firing alert and those resolved
  today, with who acknowledged them, and the silences in force;
- ``POST /api/v1/alerts/{fingerprint}/ack`` (operator): ``{"comment": "..."}``; a
  firing alert stops repeating, the operator's name is recorded with it;
- ``POST /api/v1/silences`` (operator): ``{"rule": GLOB, "scope": GLOB, "duration":
  "2h", "comment": "..."}``; matching notifications are marked silenced and only the
  sinks that take silenced ones (the log) get them;
- ``GET /api/v1/silences`` (read), ``DELETE /api/v1/silences/{id}`` (operator).

Commands need an operator token (``[http] operator_tokens``; a producer's write token
is not enough). Each is applied by the writer between two rounds and the alert state
checkpointed before the answer, so a crash right after an acknowledgement loses
nothing (with a file or Redis store).
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
from aiohttp import web

from callfloor.alerts.engine import MAX_SILENCES
from callfloor.config import parse_duration
from callfloor.web import auth
from callfloor.web.errors import json_error, json_response
from callfloor.web.floor import floor_of

__all__ = ["add_routes"]

MAX_COMMAND_BYTES: Final = 4096
MAX_COMMENT: Final = 500
MAX_SILENCE_S: Final = 30 * 24 * 3600.0
_GLOB: Final = re.compile(r"^[A-Za-z0-9_.*?\[\]@:/-]{1,128}$")
_FINGERPRINT: Final = re.compile(r"^[0-9a-f]{16}$")


async def _command(request: web.Request) -> dict[str, Any] | web.Response:
    """The JSON object of a command body, or the 4xx answer saying what is wrong."""
    if request.content_length is not None and request.content_length > MAX_COMMAND_BYTES:
        return json_error(413, f"a command body is at most {MAX_COMMAND_BYTES} bytes")
    # read(n) answers what has arrived, not n bytes: a body split over TCP segments is
    # read until its end (or one byte past the limit).
    raw = bytearray()
    while len(raw) <= MAX_COMMAND_BYTES:
        chunk = await request.content.read(MAX_COMMAND_BYTES + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > MAX_COMMAND_BYTES:
        return json_error(413, f"a command body is at most {MAX_COMMAND_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return json_error(400, f"the body is not JSON: {exc}")
    except RecursionError:  # nesting deeper than the decoder's stack (it is not a 500)
        return json_error(400, "the body is not JSON this service reads: nested too deeply")
    if not isinstance(data, dict):
        return json_error(400, "the body must be a JSON object")
    return data


def _comment(data: dict[str, Any]) -> str | web.Response:
    comment = data.get("comment", "")
    if not isinstance(comment, str):
        return json_error(400, "comment: expected a string")
    if len(comment) > MAX_COMMENT:
        return json_error(400, f"comment: at most {MAX_COMMENT} characters")
    return comment


async def list_alerts(request: web.Request) -> web.Response:
    """Every listed alert with its acknowledgement, and the silences."""
    floor = floor_of(request)
    procs = floor.alert_processors()
    alerting = floor.alerting
    alerts = alerting.alerts(procs)
    out = []
    for a in sorted(alerts, key=lambda a: (a.since, a.rule, a.scope)):
        entry = {
            "rule": a.rule,
            "scope_kind": a.scope_kind,
            "scope": a.scope,
            "site": a.site,
            "severity": a.severity,
            "state": a.state,
            "since": a.since,
            "fired_at": a.fired_at,
            "ended_at": a.ended_at,
            "value": a.value,
            "fingerprint": a.fingerprint,
            "acknowledged_by": a.acknowledged_by,
            "acknowledged_at": a.acknowledged_at,
            "ack_comment": a.ack_comment,
        }
        out.append(entry)
    silences = [msgspec.to_builtins(s) for s in alerting.silences(procs)]
    return json_response({"alerts": out, "silences": silences})


async def acknowledge(request: web.Request) -> web.Response:
    """Acknowledge one firing alert."""
    fp = request.match_info["fingerprint"]
    if not _FINGERPRINT.match(fp):
        return json_error(
            400, "the fingerprint is 16 lowercase hex digits (see GET /api/v1/alerts)"
        )
    data = await _command(request)
    if isinstance(data, web.Response):
        return data
    comment = _comment(data)
    if isinstance(comment, web.Response):
        return comment
    floor = floor_of(request)
    by = request[auth.OPERATOR]
    found = await floor.alert_command(
        lambda procs: floor.alerting.acknowledge(procs, fp, by, comment)
    )
    if found is None:
        return json_error(404, f"no firing alert {fp} (only a firing alert can be acknowledged)")
    return json_response(
        {"fingerprint": fp, "acknowledged_by": by, "acknowledged_at": found.acknowledged_at}
    )


async def add_silence(request: web.Request) -> web.Response:
    """Silence alerts by rule and scope globs for a duration."""
    data = await _command(request)
    if isinstance(data, web.Response):
        return data
    rule = data.get("rule", "*")
    scope = data.get("scope", "*")
    for key, value in (("rule", rule), ("scope", scope)):
        if not isinstance(value, str) or not _GLOB.match(value):
            return json_error(400, f"{key}: expected a glob of letters, digits and _.*?[]@:/-")
    raw = data.get("duration")
    if raw is None:
        return json_error(400, 'duration: missing (e.g. "2h")')
    try:
        duration = parse_duration(raw)
    except ValueError as exc:
        return json_error(400, f"duration: {exc}")
    if not 0 < duration <= MAX_SILENCE_S:
        return json_error(400, "duration: longer than 0 and at most 30d")
    comment = _comment(data)
    if isinstance(comment, web.Response):
        return comment
    floor = floor_of(request)
    by = request[auth.OPERATOR]
    silence = await floor.alert_command(
        lambda procs: floor.alerting.silence(
            procs, rule=rule, scope=scope, duration_s=duration, by=by, comment=comment
        )
    )
    if silence is None:
        return json_error(
            409,
            f"{MAX_SILENCES} silences are in force already: delete one "
            "(DELETE /api/v1/silences/{id}) or wait until one ends",
        )
    return json_response(msgspec.to_builtins(silence), status=201)


async def list_silences(request: web.Request) -> web.Response:
    floor = floor_of(request)
    silences = floor.alerting.silences(floor.alert_processors())
    return json_response({"silences": [msgspec.to_builtins(s) for s in silences]})


async def remove_silence(request: web.Request) -> web.Response:
    silence_id = request.match_info["id"]
    floor = floor_of(request)
    found = await floor.alert_command(lambda procs: floor.alerting.unsilence(procs, silence_id))
    if not found:
        return json_error(404, f"no silence {silence_id[:40]!r}")
    return json_response({"deleted": silence_id})


def add_routes(app: web.Application) -> None:
    """The alert routes (operator commands registered as such)."""
    app.router.add_get("/api/v1/alerts", list_alerts, name="alerts")
    app.router.add_post("/api/v1/alerts/{fingerprint}/ack", acknowledge, name="alert_ack")
    app.router.add_get("/api/v1/silences", list_silences, name="silences")
    app.router.add_post("/api/v1/silences", add_silence, name="silence_add")
    app.router.add_delete("/api/v1/silences/{id}", remove_silence, name="silence_remove")
    for name in ("alert_ack", "silence_add", "silence_remove"):
        auth.ROUTE_NEEDS[name] = auth.Need.OPERATE

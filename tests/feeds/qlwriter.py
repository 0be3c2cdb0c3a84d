"""Helpers (no tests): canonical call events written as Asterisk would log them.

What an Asterisk PBX would write for the same calls: queue_log lines, or the rows of its
database exports (Asterisk realtime, PBXware). Only call events are written (a
queue_log's agent states are what the mapper synthesises); times are whole seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

EXITS = {"key": "EXITWITHKEY", "empty": "EXITEMPTY"}  # other dequeues: EXITWITHTIMEOUT

Record = tuple[int, str, str, str, str, list[str]]  # epoch, callid, queue, agent, verb, data


def records(events: list[dict[str, Any]]) -> list[Record]:
    """The queue_log records of ``events`` (call events only), in their order."""
    out: list[Record] = []
    waiting: dict[str, tuple[str, int]] = {}  # call -> (queue, entered)
    talking: dict[str, tuple[str, int, int]] = {}  # call -> (queue, wait, answered)
    for e in events:
        kind, t = e["type"], int(e["ts"])
        call = e.get("call_id", "NONE")
        if kind == "call_queued":
            if call in waiting:  # a requeue: the dialplan's overflow after a timeout
                queue, entered = waiting.pop(call)
                out.append(
                    (t, call, queue, "NONE", "EXITWITHTIMEOUT", ["1", "1", str(t - entered)])
                )
            waiting[call] = (e["queue"], t)
            out.append((t, call, e["queue"], "NONE", "ENTERQUEUE", ["", "5550001234", "1"]))
        elif kind == "call_answered" and call in waiting:
            queue, entered = waiting.pop(call)
            talking[call] = (queue, t - entered, t)
            agent = f"SIP/{e['agent']}"
            out.append((t, call, queue, agent, "CONNECT", [str(t - entered), f"{call}-b", "3"]))
        elif kind == "call_abandoned" and call in waiting:
            queue, entered = waiting.pop(call)
            out.append((t, call, queue, "NONE", "ABANDON", ["1", "1", str(t - entered)]))
        elif kind == "call_dequeued" and call in waiting:
            queue, entered = waiting.pop(call)
            verb = EXITS.get(e.get("reason") or "", "EXITWITHTIMEOUT")
            data = (
                ["1", "1", "1", str(t - entered)]
                if verb == "EXITWITHKEY"
                else ["1", "1", str(t - entered)]
            )
            out.append((t, call, queue, "NONE", verb, data))
        elif kind == "call_ended" and call in talking:
            queue, wait, answered = talking.pop(call)
            agent = f"SIP/{e['agent']}" if e.get("agent") else "NONE"
            out.append(
                (t, call, queue, agent, "COMPLETECALLER", [str(wait), str(t - answered), "1"])
            )
        elif kind == "call_missed":
            queue = waiting.get(call, (e.get("queue") or "NONE", t))[0]
            out.append((t, call, queue, f"SIP/{e['agent']}", "RINGNOANSWER", ["15000"]))
    return out


def queue_log(events: list[dict[str, Any]]) -> str:
    """A queue_log file: ``epoch|callid|queue|agent|VERB|data...``."""
    return "".join(
        "|".join([str(t), c, q, a, v, *d]) + "\n" for t, c, q, a, v, d in records(events)
    )


def realtime_csv(events: list[dict[str, Any]], zone: str) -> str:
    """An Asterisk realtime table export (FreePBX, Issabel): local time text in ``zone``."""
    tz = ZoneInfo(zone)
    lines = ["time,callid,queuename,agent,event,data1,data2,data3,data4,data5\n"]
    for t, c, q, a, v, d in records(events):
        local = datetime.fromtimestamp(t, UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        data = (d + [""] * 5)[:5]
        lines.append(",".join([local, c, q, a, v, *data]) + "\n")
    return "".join(lines)


def pbxware_csv(events: list[dict[str, Any]]) -> str:
    """A PBXware export: epoch in date_time, agent in type, numbers in their columns."""
    lines = [
        "uid,date_time,callid,queue_name,type,event,param1,param2,param3,entpos,expos,htime,ttime,time\n"
    ]
    for uid, (t, c, q, a, v, d) in enumerate(records(events), start=1):
        htime = ttime = "0"
        param1 = param2 = param3 = ""
        if v == "ENTERQUEUE":
            param1 = d[1]
        elif v == "CONNECT":
            htime, param2, param3 = d[0], d[1], d[2]
        elif v == "COMPLETECALLER":
            htime, ttime = d[0], d[1]
        elif v in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"):
            htime = d[-1]
        elif v == "RINGNOANSWER":
            htime = d[0]
        local = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            ",".join(
                [
                    str(uid),
                    str(t),
                    c,
                    q,
                    a,
                    v,
                    param1,
                    param2,
                    param3,
                    "1",
                    "0",
                    htime,
                    ttime,
                    local,
                ]
            )
            + "\n"
        )
    return "".join(lines)

"""Feed mapping throughput: an Asterisk queue_log through its mapper, on one core.

The simulated day of ``bench_replay`` (1,000 agents, 50 queues) is written as Asterisk
would log it (calls, ring-no-answers, member adds and removals, pauses) and mapped:

- *split*: bytes to lines with their offsets, each line split into fields (the floor
  any parser pays);
- *parse*: bytes to validated queue_log records
  (:func:`~callfloor.feeds.queue_log.parse_lines`: lines, fields split, epoch checked,
  verb recognised), what a parser does;
- *map*: :class:`~callfloor.feeds.queue_log.QueueLogMapper` (bytes to canonical events
  with their ids, agent states synthesised: the parse stage and the mapping);
- the same for the PBXware CSV export layout;
- ``callfloor convert --from queue_log`` as a process (reading, mapping, encoding
  NDJSON to /dev/null): wall time and the child's CPU time.

Medians of several runs, pinned to one CPU (``--cpu``, default 0), garbage collector
frozen as replay does.

    python -m bench.bench_feeds [--runs 5] [--cpu 0]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from bench.common import OUT, machine, median, simulated_day
from callfloor.feeds.base import LineSplitter
from callfloor.feeds.queue_log import QueueLogMapper, parse_lines
from callfloor.feeds.queue_log_csv import QueueLogCsvMapper

CHUNK = 4 * 1024 * 1024
_EXITS = {"key": "EXITWITHKEY", "empty": "EXITEMPTY"}


def _records(events: Path) -> list[tuple[int, str, str, str, str, list[str]]]:
    """The day's events as queue_log records (epoch, callid, queue, agent, verb, data)."""
    out: list[tuple[int, str, str, str, str, list[str]]] = []
    waiting: dict[str, tuple[str, int]] = {}
    talking: dict[str, tuple[str, int, int]] = {}
    queues: dict[str, list[str]] = {}
    paused: set[str] = set()
    decode = msgspec.json.Decoder().decode
    with open(events, "rb") as fh:
        for line in fh:
            e = decode(line)
            kind, t, call = e["type"], int(e["ts"]), e.get("call_id", "NONE")
            if kind == "call_queued":
                if call in waiting:
                    q, entered = waiting.pop(call)
                    out.append(
                        (t, call, q, "NONE", "EXITWITHTIMEOUT", ["1", "1", str(t - entered)])
                    )
                waiting[call] = (e["queue"], t)
                out.append((t, call, e["queue"], "NONE", "ENTERQUEUE", ["", "5550001234", "1"]))
            elif kind == "call_answered" and call in waiting:
                q, entered = waiting.pop(call)
                talking[call] = (q, t - entered, t)
                out.append(
                    (
                        t,
                        call,
                        q,
                        f"SIP/{e['agent']}",
                        "CONNECT",
                        [str(t - entered), f"{call}.2", "3"],
                    )
                )
            elif kind in ("call_abandoned", "call_dequeued") and call in waiting:
                q, entered = waiting.pop(call)
                verb = (
                    "ABANDON"
                    if kind == "call_abandoned"
                    else _EXITS.get(e.get("reason") or "", "EXITWITHTIMEOUT")
                )
                out.append((t, call, q, "NONE", verb, ["1", "1", str(t - entered)]))
            elif kind == "call_ended" and call in talking:
                q, wait, answered = talking.pop(call)
                out.append(
                    (
                        t,
                        call,
                        q,
                        f"SIP/{e.get('agent')}",
                        "COMPLETECALLER",
                        [str(wait), str(t - answered), "1"],
                    )
                )
            elif kind == "call_missed":
                q = waiting.get(call, (e.get("queue") or "NONE", t))[0]
                out.append((t, call, q, f"SIP/{e['agent']}", "RINGNOANSWER", ["15000"]))
            elif kind == "agent_state":
                agent, member = e["agent"], f"SIP/{e['agent']}"
                new = e.get("queues") or queues.get(agent, [])
                if e["state"] == "logged_out":
                    new = []
                for q in queues.get(agent, []):
                    if q not in new:
                        out.append((t, "NONE", q, member, "REMOVEMEMBER", [""]))
                for q in new:
                    if q not in queues.get(agent, []):
                        out.append((t, "NONE", q, member, "ADDMEMBER", [""]))
                queues[agent] = list(new)
                if e["state"] == "not_ready" and agent not in paused:
                    paused.add(agent)
                    out.append((t, "NONE", "NONE", member, "PAUSEALL", [e.get("reason") or ""]))
                elif e["state"] != "not_ready" and agent in paused:
                    paused.discard(agent)
                    out.append((t, "NONE", "NONE", member, "UNPAUSEALL", [""]))
    return out


def _write_inputs() -> tuple[Path, Path]:
    events, _ = simulated_day()
    plain = OUT / (events.stem + ".queue_log")
    export = OUT / (events.stem + ".pbxware.csv")
    if not plain.exists() or not export.exists():
        records = _records(events)
        plain.write_text(
            "".join("|".join([str(t), c, q, a, v, *d]) + "\n" for t, c, q, a, v, d in records)
        )
        rows = [
            "uid,date_time,callid,queue_name,type,event,param1,param2,param3,"
            "entpos,expos,htime,ttime,time\n"
        ]
        for uid, (t, c, q, a, v, d) in enumerate(records, start=1):
            p = [*d, "", "", ""][:3]
            rows.append(f"{uid},{t},{c},{q},{a},{v},{p[0]},{p[1]},{p[2]},1,0,0,0,x\n")
        export.write_text("".join(rows))
    return plain, export


def _timed(fn: Callable[[], int], runs: int) -> tuple[float, float, int]:
    """Median CPU seconds and wall seconds of ``fn`` (which returns a count)."""
    cpus: list[float] = []
    walls: list[float] = []
    count = 0
    for _ in range(runs):
        gc.collect()
        gc.freeze()
        wall, cpu = time.perf_counter(), time.process_time()
        count = fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
        gc.unfreeze()
    return median(cpus), median(walls), count


def _map(path: Path, mapper_cls: type[QueueLogMapper] | type[QueueLogCsvMapper]) -> int:
    """Map a file in 4 MB chunks; returns the number of events (the lines are counted apart)."""
    mapper = mapper_cls()
    splitter = LineSplitter()
    events = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            lines, offsets, _ = splitter.push(chunk)
            events += len(mapper.feed(lines, offsets).events)
    return events


def _split(path: Path) -> int:
    splitter = LineSplitter()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            lines, _, _ = splitter.push(chunk)
            for line in lines:
                line.decode("utf-8", "replace").split("|")
            n += len(lines)
    return n


def _parse(path: Path) -> int:
    """Bytes to queue_log records; returns the number of records."""
    splitter = LineSplitter()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            lines, _, _ = splitter.push(chunk)
            n += len(parse_lines(lines).records)
    return n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin to")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    plain, export = _write_inputs()
    lines = plain.read_bytes().count(b"\n")
    print(f"machine: {machine()}")
    print(f"input: {plain.name}: {lines:,} queue_log lines ({plain.stat().st_size / 1e6:.0f} MB)")
    for name, fn in (
        ("split (lines, fields)", lambda: _split(plain)),
        ("parse queue_log (records)", lambda: _parse(plain)),
        ("map queue_log", lambda: _map(plain, QueueLogMapper)),
        ("map PBXware CSV", lambda: _map(export, QueueLogCsvMapper)),
    ):
        cpu, wall, count = _timed(fn, args.runs)
        extra = (
            f", {count:,} events"
            if name.startswith("map")
            else f", {count:,} records"
            if name.startswith("parse")
            else ""
        )
        print(
            f"{name}: median {cpu:.2f} s CPU ({wall:.2f} s wall) = {lines / cpu:,.0f} lines/s "
            f"CPU, {lines / wall:,.0f} lines/s wall{extra}"
        )
    walls = []
    cpus = []
    for _ in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "callfloor",
                "convert",
                "--from",
                "queue_log",
                str(plain),
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        )
    wall, cpu = median(walls), median(cpus)
    print(
        f"callfloor convert --from queue_log (process, NDJSON to /dev/null): median "
        f"{cpu:.2f} s CPU ({wall:.2f} s wall) = {lines / cpu:,.0f} lines/s CPU, "
        f"{lines / wall:,.0f} lines/s wall"
    )


if __name__ == "__main__":
    main()

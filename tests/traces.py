"""Helpers (no tests) for the arrival-order tests: simulated traces, feeds, merges, diffs.

The numbers must depend only on the events, never on the order or the time they
arrive (SPEC §9). These helpers build the inputs for that claim from the outside:

- :func:`simulate`: a small simulated trace (the real simulator, deterministic per seed)
  with the configuration that describes its floor;
- :func:`split_feeds` / :func:`merge_feeds`: the call feed and the agent feed, and one
  arrival order for given per-feed delays (each feed stays in its own order);
- :func:`shuffle_within`: every event delayed independently by up to a bound (the
  stronger property: even one call's events may arrive out of order);
- :func:`write_ndjson`, :func:`replay_events`: files and the SPEC §7 document of a replay;
- :func:`assert_same_document`: two documents equal with ``counters.late`` aside; on a
  mismatch the message lists the first differing paths, never a 2 MB diff.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callfloor.config import Config, load_config
from callfloor.replay import replay_document
from callfloor.simulator import FloorSimulation, build_spec

Event = dict[str, Any]
Document = dict[str, Any]

# 2026-11-23T00:00:00Z, a Monday: the simulator's own default start.
DAY0: float = 1795392000.0

# A delay is seconds, either fixed or a function of the event's ts.
Delay = float | Callable[[float], float]

CALL_TYPES: frozenset[str] = frozenset(
    {
        "call_queued",
        "call_routed",
        "call_missed",
        "call_answered",
        "call_abandoned",
        "call_dequeued",
        "call_ended",
    }
)


# ---- simulated traces -----------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """A simulated trace (events in ``ts`` order, as the simulator writes them) and the
    TOML configuration of its floor."""

    events: list[Event]
    toml: str
    start: float
    end: float

    @property
    def last_ts(self) -> float:
        """The latest event time (the default ``as_of`` of its sorted replay)."""
        return max(float(e["ts"]) for e in self.events)


def simulate(
    *,
    seed: int = 1,
    agents: int = 20,
    queues: int = 4,
    sites: int = 2,
    hours: float = 2.0,
    start: float = DAY0 + 7 * 3600.0,
    extra_toml: str = "",
) -> Trace:
    """A small deterministic simulated trace: the same arguments give the same events.

    The default start, 07:00 UTC, is 07:00 in London and 15:00 in Shanghai (the first two
    simulated sites), so both floors are busy; ``extra_toml`` is appended to the floor's
    configuration (for example tighter violation limits).
    """
    sim = FloorSimulation(build_spec(agents=agents, queues=queues, sites=sites, seed=seed))
    events = [dict(e) for e in sim.events(start, hours * 3600.0)]
    toml = sim.config_toml()
    if extra_toml:
        toml = toml + "\n" + extra_toml
    return Trace(events=events, toml=toml, start=start, end=start + hours * 3600.0)


def with_agent_limits(toml: str, **values: str) -> str:
    """``toml`` with keys of its ``[agents]`` table set to the given TOML values (written as
    TOML text, e.g. ``daily_not_ready='["20m", "40m"]'``), replacing any existing ones."""
    lines = toml.splitlines()
    try:
        start = lines.index("[agents]")
    except ValueError:
        lines += ["", "[agents]"]
        start = len(lines) - 1
    end = start + 1
    while end < len(lines) and not lines[end].startswith("["):
        end += 1
    kept = [line for line in lines[start + 1 : end] if line.split("=", 1)[0].strip() not in values]
    added = [f"{key} = {value}" for key, value in values.items()]
    return "\n".join([*lines[: start + 1], *added, *kept, *lines[end:]]) + "\n"


def shifted(events: Iterable[Event], by: float) -> list[Event]:
    """Copies of ``events`` with every ``ts`` moved by ``by`` seconds (ms precision kept)."""
    return [{**e, "ts": round(float(e["ts"]) + by, 3)} for e in events]


# ---- feeds and arrival orders ---------------------------------------------------------


def is_call_event(event: Event) -> bool:
    """True for contact (call) events, False for agent states."""
    return event["type"] in CALL_TYPES


def split_feeds(events: Iterable[Event]) -> tuple[list[Event], list[Event]]:
    """The call feed (ACD call events) and the agent feed (agent states), each in the
    order of ``events``."""
    calls: list[Event] = []
    agent_states: list[Event] = []
    for e in events:
        (calls if is_call_event(e) else agent_states).append(e)
    return calls, agent_states


def _delay_at(delay: Delay, ts: float) -> float:
    value = delay(ts) if callable(delay) else float(delay)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a delay must be a finite number of seconds >= 0, got {value!r}")
    return value


def arrival_times(feed: Sequence[Event], delay: Delay) -> list[float]:
    """When each event of an in-order feed arrives: its ``ts`` plus the feed's delay.

    A feed is delivered in its own order, so an event never arrives before the one ahead
    of it: where the delay shrinks faster than time passes, an event waits for its
    predecessor (its delay grows to the predecessor's arrival, never beyond the largest
    delay seen).
    """
    out: list[float] = []
    latest = -math.inf
    for e in feed:
        ts = float(e["ts"])
        latest = max(latest, ts + _delay_at(delay, ts))
        out.append(latest)
    return out


def merge_feeds(feeds: Sequence[Sequence[Event]], delays: Sequence[Delay]) -> list[Event]:
    """One arrival order for several feeds, each delayed by its own ``delay``.

    Events are ordered by arrival time; at equal arrival times the earlier feed in
    ``feeds`` comes first, and each feed keeps its own order.
    """
    if len(feeds) != len(delays):
        raise ValueError(f"{len(feeds)} feeds but {len(delays)} delays")
    keyed: list[tuple[float, int, int, Event]] = []
    for f, (feed, delay) in enumerate(zip(feeds, delays, strict=True)):
        for k, (arrives, e) in enumerate(zip(arrival_times(feed, delay), feed, strict=True)):
            keyed.append((arrives, f, k, e))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


def steps(schedule: Sequence[tuple[float, float]]) -> Callable[[float], float]:
    """A delay that changes over time: ``[(from_ts, delay), ...]`` sorted by ``from_ts``;
    before the first step the first delay holds."""
    if not schedule:
        raise ValueError("a delay schedule needs at least one step")
    bounds = [t for t, _ in schedule]
    if bounds != sorted(bounds):
        raise ValueError("delay steps must be sorted by their start time")

    def delay(ts: float) -> float:
        value = schedule[0][1]
        for start, d in schedule:
            if ts < start:
                break
            value = d
        return value

    return delay


def shuffle_within(events: Sequence[Event], window_s: float, seed: int) -> list[Event]:
    """Every event delayed independently by a random 0..``window_s`` seconds, in arrival
    order: events less than ``window_s`` apart may swap, even two events of one call."""
    rng = random.Random(seed)
    keyed = [(float(e["ts"]) + rng.uniform(0.0, window_s), k, e) for k, e in enumerate(events)]
    keyed.sort(key=lambda item: item[:2])
    return [item[2] for item in keyed]


def sort_by_ts(events: Iterable[Event]) -> list[Event]:
    """Events in ``ts`` order (stable for equal ``ts``)."""
    return sorted(events, key=lambda e: float(e["ts"]))


def out_of_order_pairs(events: Sequence[Event]) -> int:
    """How many events arrive after an event with a later ``ts`` (0: in ``ts`` order)."""
    count = 0
    latest = -math.inf
    for e in events:
        ts = float(e["ts"])
        if ts < latest:
            count += 1
        latest = max(latest, ts)
    return count


def max_lateness(events: Sequence[Event]) -> float:
    """The largest amount by which an event's ``ts`` lies behind an earlier arrival's."""
    worst = 0.0
    latest = -math.inf
    for e in events:
        ts = float(e["ts"])
        worst = max(worst, latest - ts)
        latest = max(latest, ts)
    return worst


def is_permutation(a: Sequence[Event], b: Sequence[Event]) -> bool:
    """True when ``a`` and ``b`` hold the same events (as JSON), in any order."""

    def canon(events: Sequence[Event]) -> list[str]:
        return sorted(json.dumps(e, sort_keys=True) for e in events)

    return canon(a) == canon(b)


def keeps_order(merged: Sequence[Event], feed: Sequence[Event]) -> bool:
    """True when the events of ``feed`` appear in ``merged`` in the feed's own order."""
    wanted = {id(e) for e in feed}
    return [id(e) for e in merged if id(e) in wanted] == [id(e) for e in feed]


# ---- files and replays ----------------------------------------------------------------


def write_ndjson(path: Path, events: Iterable[Event]) -> Path:
    """Write events as NDJSON (one compact JSON object a line)."""
    with path.open("w", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e, separators=(",", ":")))
            fh.write("\n")
    return path


def write_config(path: Path, toml: str) -> Config:
    """Write a TOML configuration file and load it (as `callfloor replay --config`)."""
    path.write_text(toml, encoding="utf-8")
    return load_config(path)


def replay_events(
    directory: Path, name: str, events: Iterable[Event], config: Config, at: float | None
) -> Document:
    """The SPEC §7 document of replaying ``events`` in the given order (through a file)."""
    path = write_ndjson(directory / f"{name}.ndjson", events)
    return replay_document([path], config, at)


# ---- checking a test's own inputs ----------------------------------------------------


class SetupError(Exception):
    """A test's inputs are not what it claims (deliberately not an AssertionError, so a
    test marked ``xfail(raises=AssertionError)`` still goes red on a bug in the test)."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`SetupError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SetupError(message)


def check_arrival(arrival: Sequence[Event], original: Sequence[Event]) -> None:
    """An arrival order must hold exactly the original events and be out of ``ts`` order."""
    require(is_permutation(arrival, original), "the arrival order lost or added events")
    require(out_of_order_pairs(arrival) > 0, "the arrival order is in ts order: tests nothing")


def reorders_agent_ties(arrival: Sequence[Event], original: Sequence[Event]) -> bool:
    """Whether two ``agent_state`` of one agent with equal ``ts`` arrive in another order
    than in ``original``: arrival order breaks such ties (SPEC §9), so the agent's state
    between that instant and its next event differs, and alerts over it may too (the
    end state, and so the numbers, are the same)."""

    def order(events: Sequence[Event]) -> dict[tuple[str, float], list[str]]:
        out: dict[tuple[str, float], list[str]] = {}
        for e in events:
            if e.get("type") == "agent_state":
                out.setdefault((str(e["agent"]), float(e["ts"])), []).append(_list_key(e))
        return out

    mine, theirs = order(arrival), order(original)
    return any(len(v) > 1 and v != theirs.get(k) for k, v in mine.items())


def sorted_replay_baseline(
    directory: Path,
    original: Sequence[Event],
    arrival: Sequence[Event],
    config: Config,
    at: float | None,
) -> Document:
    """The replay of ``original`` (in ``ts`` order), after checking the arrival order and
    that replaying it sorted by ``ts`` gives the same document (the test's own sanity)."""
    require(out_of_order_pairs(original) == 0, "the original trace is not in ts order")
    check_arrival(arrival, original)
    base = replay_events(directory, "original", original, config, at)
    again = replay_events(directory, "sorted", sort_by_ts(arrival), config, at)
    if reorders_agent_ties(arrival, original):
        again = {k: v for k, v in again.items() if k != "alerts"}
        base_cmp = {k: v for k, v in base.items() if k != "alerts"}
    else:
        base_cmp = base
    differ = document_diff(again, base_cmp)
    require(not differ, f"sorting the arrival order does not give the original: {differ}")
    return base


# ---- comparing documents --------------------------------------------------------------

# Floats may differ by summation order (a mean over the same values added in another
# order); anything beyond this relative difference is a real difference.
REL_TOL: float = 1e-9


def _list_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True)


def normalized(doc: Document) -> Document:
    """``doc`` without ``counters.late``, with ``violations`` and ``alerts`` in a canonical
    order (SPEC §7 does not order them; equal-start items may be listed in arrival order)."""
    out = dict(doc)
    counters = dict(out.get("counters", {}))
    counters.pop("late", None)
    out["counters"] = counters
    for key in ("violations", "alerts"):
        if isinstance(out.get(key), list):
            out[key] = sorted(out[key], key=_list_key)
    return out


def _same_number(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def diff_paths(a: Any, b: Any, limit: int = 12, path: str = "") -> list[str]:
    """The first ``limit`` paths where ``a`` and ``b`` differ, each with both values."""
    out: list[str] = []

    def show(x: Any) -> str:
        text = json.dumps(x, sort_keys=True)
        return text if len(text) <= 160 else text[:157] + "..."

    def walk(x: Any, y: Any, p: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                sub = f"{p}.{k}" if p else str(k)
                if k not in y:
                    out.append(f"{sub}: only in the first: {show(x[k])}")
                elif k not in x:
                    out.append(f"{sub}: only in the second: {show(y[k])}")
                else:
                    walk(x[k], y[k], sub)
                if len(out) >= limit:
                    return
            return
        if isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                out.append(f"{p}: {len(x)} items != {len(y)} items")
            for i, (xi, yi) in enumerate(zip(x, y, strict=False)):
                walk(xi, yi, f"{p}[{i}]")
                if len(out) >= limit:
                    return
            return
        numbers = (int, float)
        if (
            isinstance(x, numbers)
            and isinstance(y, numbers)
            and not isinstance(x, bool)
            and not isinstance(y, bool)
        ):
            if not _same_number(float(x), float(y)):
                out.append(f"{p}: {x!r} != {y!r}")
            return
        if x != y:
            out.append(f"{p}: {show(x)} != {show(y)}")

    walk(a, b, path)
    return out


def _multiset_diff(key: str, a: list[Any], b: list[Any], limit: int) -> list[str]:
    """Items of list ``key`` found in only one of the documents (counted with repeats)."""
    rest = [_list_key(y) for y in b]
    only_a: list[str] = []
    for x in a:
        k = _list_key(x)
        if k in rest:
            rest.remove(k)
        else:
            only_a.append(k)
    out = [f"{key}: only in the first: {k}" for k in only_a]
    out += [f"{key}: only in the second: {k}" for k in rest]
    return out[:limit]


def document_diff(actual: Document, expected: Document, limit: int = 12) -> list[str]:
    """The first differing paths of two documents, ``counters.late`` aside.

    Violations and alerts are compared as sets: a differing item is shown whole, once.
    """
    a, b = normalized(actual), normalized(expected)
    out: list[str] = []
    for key in ("violations", "alerts"):
        x, y = a.pop(key, None), b.pop(key, None)
        if isinstance(x, list) and isinstance(y, list):
            out += _multiset_diff(key, x, y, limit)
        elif x != y:
            out.append(f"{key}: {x!r} != {y!r}")
    out = out[: limit // 2]
    return diff_paths(a, b, limit - len(out)) + out


def assert_same_document(
    actual: Document, expected: Document, what: str = "documents", *, alerts: bool = True
) -> None:
    """Assert two SPEC §7 documents are equal, ``counters.late`` aside (and ``alerts``
    aside with ``alerts=False``: a live floor given events later than its alert
    snapshots reach evaluates their alerts at its clock, docs/alerts.md).

    Violations and alerts are compared as sets; on a mismatch the message counts the
    differences and shows the first differing paths and items (actual first, expected
    second), never the whole documents.
    """
    if not alerts:
        actual = {k: v for k, v in actual.items() if k != "alerts"}
        expected = {k: v for k, v in expected.items() if k != "alerts"}
    every = document_diff(actual, expected, limit=1_000_000)
    if not every:
        return
    items = [p for p in every if p.startswith(("violations:", "alerts:"))]
    values = [p for p in every if p not in items]
    shown = values[:10] + items[:6]
    listing = "\n  ".join(shown)
    raise AssertionError(
        f"{what} differ in {len(values)} values and {len(items)} violation/alert entries "
        f"(first shown):\n  {listing}"
    )

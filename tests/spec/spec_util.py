"""Black-box helpers for the SPEC conformance suite: build events, run a replay, read results."""

from __future__ import annotations

import json
import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from callfloor.config import load_config
from callfloor.replay import replay_document

# 2026-11-23 09:00:00 UTC (a Monday), far from any DST change in UTC.
T0: int = int(datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp())

WINDOW_KEYS = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "dequeued",
    "sl_offered",
    "answered_in_sl",
    "abandoned_in_sl",
    "handled",
    "service_level",
    "abandon_rate",
    "asa_s",
    "max_wait_s",
    "aht_s",
)
COUNT_KEYS = WINDOW_KEYS[:9]


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: float = 0.0) -> float:
    """Epoch seconds of a UTC wall-clock time."""
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp() + s


def local(
    tz: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: float = 0.0, fold: int = 0
) -> float:
    """Epoch seconds of a wall-clock time in an IANA zone."""
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz), fold=fold).timestamp() + s


# ---- event builders -------------------------------------------------------------------


def ev(type_: str, ts: Any, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"type": type_, "ts": ts}
    d.update({k: v for k, v in kw.items() if v is not None})
    return d


def queued(ts: Any, call: str, queue: str = "sales", **kw: Any) -> dict[str, Any]:
    return ev("call_queued", ts, call_id=call, queue=queue, **kw)


def routed(ts: Any, call: str, agent: str = "a1", **kw: Any) -> dict[str, Any]:
    return ev("call_routed", ts, call_id=call, agent=agent, **kw)


def answered(ts: Any, call: str, agent: str = "a1", **kw: Any) -> dict[str, Any]:
    return ev("call_answered", ts, call_id=call, agent=agent, **kw)


def abandoned(ts: Any, call: str, **kw: Any) -> dict[str, Any]:
    return ev("call_abandoned", ts, call_id=call, **kw)


def dequeued(ts: Any, call: str, **kw: Any) -> dict[str, Any]:
    return ev("call_dequeued", ts, call_id=call, **kw)


def ended(ts: Any, call: str, agent: str | None = "a1", **kw: Any) -> dict[str, Any]:
    return ev("call_ended", ts, call_id=call, agent=agent, **kw)


def missed(ts: Any, call: str, agent: str = "a1", **kw: Any) -> dict[str, Any]:
    return ev("call_missed", ts, call_id=call, agent=agent, **kw)


def state(ts: Any, agent: str, st: str, **kw: Any) -> dict[str, Any]:
    return ev("agent_state", ts, agent=agent, state=st, **kw)


# ---- running a replay -----------------------------------------------------------------


def write_events(path: Path, events: list[Any]) -> Path:
    """NDJSON: dicts are JSON-encoded, strings are written verbatim as one line."""
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def replay_in(
    directory: Path, events: list[Any], toml: str | None = None, at: float | None = None
) -> dict[str, Any]:
    ev_path = write_events(directory / "events.ndjson", events)
    cfg_path = directory / "callfloor.toml"
    cfg_path.write_text(toml or "", encoding="utf-8")
    config = load_config(cfg_path)
    return replay_document([ev_path], config, at)


def replay(events: list[Any], toml: str | None = None, at: float | None = None) -> dict[str, Any]:
    """Replay events (in a private temp dir) and return the SPEC §7 document."""
    with tempfile.TemporaryDirectory() as d:
        return replay_in(Path(d), events, toml, at)


# ---- reading a document ---------------------------------------------------------------


def win(doc: dict[str, Any], queue: str = "sales", window: str = "15m") -> dict[str, Any]:
    return doc["queues"][queue]["windows"][window]


def swin(doc: dict[str, Any], site: str = "default", window: str = "15m") -> dict[str, Any]:
    return doc["sites"][site]["windows"][window]


def live(doc: dict[str, Any], queue: str = "sales") -> dict[str, Any]:
    return doc["queues"][queue]["live"]


def nonzero(agents: dict[str, int]) -> dict[str, int]:
    """Agent-state counts without the zero entries (a state with no agents may be left out)."""
    return {k: v for k, v in agents.items() if v}


def viols(
    doc: dict[str, Any], kind: str | None = None, agent: str | None = None
) -> list[dict[str, Any]]:
    return [
        v
        for v in doc["violations"]
        if (kind is None or v["kind"] == kind) and (agent is None or v["agent"] == agent)
    ]


def approx(x: float, rel: float = 1e-12, abs_: float = 1e-6) -> Any:
    import pytest

    return pytest.approx(x, rel=rel, abs=abs_)


# ---- independent Erlang C -------------------------------------------------------------


def erlang_c_prob(n: int, a: float) -> float:
    """Erlang C probability of waiting, straight from the textbook sum."""
    top = a**n / math.factorial(n) * n / (n - a)
    bottom = sum(a**k / math.factorial(k) for k in range(n)) + top
    return top / bottom


def erlang_sl(n: int, a: float, t: float, aht: float) -> float:
    if n <= a:
        return 0.0
    return 1.0 - erlang_c_prob(n, a) * math.exp(-(n - a) * t / aht)


def erlang_required(a: float, t: float, aht: float, target: float) -> int:
    n = math.floor(a) + 1
    while erlang_sl(n, a, t, aht) < target:
        n += 1
    return n


def chrono(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events in ts order (stable for equal ts), so the default as_of is the latest event."""
    return sorted(events, key=lambda e: float(e["ts"]))

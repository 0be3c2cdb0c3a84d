"""SPEC §10 instants: a service level that collapses for 20 minutes and recovers, the
instants computed in the test from the calls themselves; replay in any order."""

from __future__ import annotations

import json
import random
from pathlib import Path

from alert_util import calls, drive, floor_config, listed
from helpers import T0

from callfloor.replay import replay_document

T = 20.0
W = 900.0
RULE = {
    "name": "sl_low",
    "when": [{"metric": "service_level", "window": "15m", "op": "<", "value": 0.8}],
    "clear": 0.85,
    "for": "2m",
    "min_volume": 10,
}
# 40 good calls (5 s), 40 bad ones (answered after 40 s: each a miss at +T), 60 good.
WAITS = [5.0] * 40 + [40.0] * 40 + [5.0] * 60


def _records() -> list[tuple[float, bool]]:
    """(attribution time, in service level) of each call's service-level record."""
    out = []
    for i, wait in enumerate(WAITS):
        t = T0 + 30.0 * i
        out.append((t + wait, True) if wait <= T else (t + T, False))
    return out


def _level(t: float) -> tuple[float | None, int]:
    """The 15-minute service level over (t - W, t] and its sl_offered."""
    inside = [ok for x, ok in _records() if t - W < x <= t]
    return (sum(inside) / len(inside) if inside else None), len(inside)


def _expected() -> tuple[float, float, float]:
    """since, fired_at, ended_at from the records: the level changes only when a record
    enters (x) or leaves (x + W)."""
    instants = sorted({x for x, _ in _records()} | {x + W for x, _ in _records()})

    def low(t: float) -> bool:
        level, n = _level(t)
        return level is not None and n >= 10 and level < 0.8

    since = next(t for t in instants if low(t))
    fired = since + 120.0
    assert all(low(t) for t in instants if since <= t <= fired)
    ended = next(
        t
        for t in instants
        if (t > fired and (_level(t)[0] or 0.0) >= 0.85) or (t > fired and _level(t)[1] < 10)
    )
    return since, fired, ended


def test_sl_low_fires_and_resolves_at_the_instants_the_calls_give() -> None:
    """Onset + for, and the instant the level is back past clear, exactly."""
    since, fired, ended = _expected()
    end = T0 + 30.0 * len(WAITS)
    proc, _ = drive(calls(WAITS), floor_config([RULE]), end)
    [alert] = listed(proc)
    assert alert["state"] == "resolved"
    assert (alert["since"], alert["fired_at"], alert["ended_at"]) == (
        since - T0,
        fired - T0,
        ended - T0,
    )


def _write(path: Path, events: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        """
[sites.s]
timezone = "UTC"
[queues.q]
site = "s"
sl_threshold_s = 20
sl_target = 0.8
[alerts]
default_rules = false
[[alerts.rules]]
name = "sl_low"
when = [{ metric = "service_level", window = "15m", op = "<", value = 0.8 }]
clear = 0.85
for = "2m"
min_volume = 10
""",
        encoding="utf-8",
    )
    return path


def test_replay_in_any_order_lists_the_same_alerts(tmp_path: Path) -> None:
    """The events shuffled (each moved by up to a minute, and fully) replay to the same
    alert list as in time order."""
    from callfloor.config import load_config

    cfg = load_config(_config_file(tmp_path))
    events = calls(WAITS)
    at = T0 + 30.0 * len(WAITS)
    in_order = replay_document([_write(tmp_path / "a.ndjson", events)], cfg, at)
    assert [a["rule"] for a in in_order["alerts"]] == ["sl_low"]  # type: ignore[index]
    rng = random.Random(7)
    jittered = sorted(events, key=lambda e: float(e["ts"]) + rng.uniform(-60, 60))  # type: ignore[arg-type]
    shuffled = list(events)
    rng.shuffle(shuffled)
    for name, order in (("jittered", jittered), ("shuffled", shuffled)):
        doc = replay_document([_write(tmp_path / f"{name}.ndjson", order)], cfg, at)
        assert doc["alerts"] == in_order["alerts"], name
        assert doc["queues"] == in_order["queues"], name

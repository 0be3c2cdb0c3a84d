"""Replay in bounded memory (issue: years of logs): history older than ``[limits]
max_lateness`` is folded as it goes, with the document of keeping everything.

Files are read in small chunks here (``CHUNK_BYTES`` patched) so that a short trace
folds many times between batches, as a long log does between its 4 MB chunks.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from traces import Trace, simulate, write_config, write_ndjson

import callfloor.replay as replay_module
from callfloor.config import Config
from callfloor.replay import ReplayResult, run_replay

LATENESS_TOML = '\n[limits]\nmax_lateness = "1h"\n'


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few dozen events: folding happens between batches."""
    monkeypatch.setattr(replay_module, "CHUNK_BYTES", 8192)


@pytest.fixture(scope="module")
def days() -> Trace:
    """Three simulated days of a small floor, with a one-hour max_lateness."""
    return simulate(seed=11, agents=12, queues=3, sites=2, hours=72.0, extra_toml=LATENESS_TOML)


def _setup(tmp_path: Path, trace: Trace, events: list[dict[str, Any]]) -> tuple[Path, Config]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_ndjson(tmp_path / "events.ndjson", events)
    return path, write_config(tmp_path / "floor.toml", trace.toml)


def _document(result: ReplayResult) -> bytes:
    return msgspec.json.encode(result.processor.view.document())


def _history_entries(result: ReplayResult) -> int:
    """Agent history entries and calls the processor still holds."""
    proc = result.processor
    return sum(len(track.ts) for track in proc.agents.values()) + len(proc.calls)


def _displaced(events: list[dict[str, Any]], seconds: float, seed: int) -> list[dict[str, Any]]:
    """``events`` in an arrival order where a fifth of them come up to ``seconds`` late."""
    rng = random.Random(seed)
    keyed = [
        (e["ts"] + (rng.uniform(0, seconds) if rng.random() < 0.2 else 0.0), n, e)
        for n, e in enumerate(events)
    ]
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [e for _, _, e in keyed]


def test_an_in_order_replay_folds_and_gives_the_document_of_keeping_everything(
    tmp_path: Path, days: Trace
) -> None:
    """Three days in time order: the bounded replay holds far less and prints the same."""
    path, cfg = _setup(tmp_path, days, days.events)
    bounded = run_replay([path], cfg)
    whole = run_replay([path], cfg, keep_everything=True)
    assert bounded.summary.bounded and bounded.summary.out_of_order is None
    assert not whole.summary.bounded
    assert _document(bounded) == _document(whole)
    assert _history_entries(bounded) * 4 < _history_entries(whole)


def test_events_late_within_max_lateness_keep_the_replay_bounded_and_exact(
    tmp_path: Path, days: Trace
) -> None:
    """Events up to 50 minutes late (max_lateness 1 h), alerts re-derived in time
    order: the same document, still bounded."""
    events = _displaced(days.events, 3000.0, seed=3)
    path, cfg = _setup(tmp_path, days, events)
    bounded = run_replay([path], cfg)
    whole = run_replay([path], cfg, keep_everything=True)
    assert bounded.summary.bounded
    assert bounded.summary.late > 0
    assert _document(bounded) == _document(whole)


def test_an_event_later_than_max_lateness_replays_again_keeping_everything(
    tmp_path: Path, days: Trace
) -> None:
    """One event moved a day later in the file: the replay is run again keeping every
    history, says which line, and prints keeping everything's document."""
    events = list(days.events)
    moved = events.pop(100)
    events.insert(len(events) // 2, moved)
    path, cfg = _setup(tmp_path, days, events)
    result = run_replay([path], cfg)
    whole = run_replay([path], cfg, keep_everything=True)
    found = result.summary.out_of_order
    assert not result.summary.bounded and found is not None
    assert found.position.number == len(events) // 2 + 1  # 1-based lines
    assert found.ts == moved["ts"] and found.latest - found.ts > 3600.0
    assert found.lateness == 3600.0
    assert _document(result) == _document(whole)


def test_a_cut_before_the_end_replays_bounded_in_both_passes(tmp_path: Path, days: Trace) -> None:
    """A later event before the last one (the second pass applies the cut): bounded,
    and the same document as keeping everything."""
    events = list(days.events)
    events[-2], events[-1] = events[-1], events[-2]
    events.append({**events[-1], "ts": events[-1]["ts"] - 600.0, "id": "earlier-last"})
    path, cfg = _setup(tmp_path, days, events)
    bounded = run_replay([path], cfg)
    whole = run_replay([path], cfg, keep_everything=True)
    assert bounded.summary.bounded and bounded.summary.left_out > 0
    assert _document(bounded) == _document(whole)


def test_progress_reaches_the_whole_input(tmp_path: Path, days: Trace) -> None:
    """The progress callback is told every batch; the last report covers every byte."""
    path, cfg = _setup(tmp_path, days, days.events)
    seen: list[replay_module.ReplayProgress] = []
    run_replay([path], cfg, progress=seen.append)
    assert len(seen) > 10
    assert seen[-1].bytes_done == seen[-1].bytes_total == path.stat().st_size
    assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)
    assert seen[-1].events == len(days.events)


def test_progress_counts_the_alert_pass_of_an_input_out_of_order(
    tmp_path: Path, days: Trace
) -> None:
    """Out-of-order input is read once more to re-derive the alerts in time order: that
    read reports its progress as a second pass, to the whole input."""
    path, cfg = _setup(tmp_path, days, _displaced(days.events, 600.0, seed=5))
    seen: list[replay_module.ReplayProgress] = []
    result = run_replay([path], cfg, at=days.end, progress=seen.append)  # no second cut pass
    assert result.summary.late > 0
    assert {p.pass_number for p in seen} == {1, 2}
    last = seen[-1]
    assert last.pass_number == 2 and last.bytes_done == last.bytes_total


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 1000),
    late_s=st.sampled_from([0.0, 60.0, 240.0]),
    hours=st.sampled_from([3.0, 9.0]),
)
def test_bounded_replay_equals_keeping_everything(
    tmp_path: Path, seed: int, late_s: float, hours: float
) -> None:
    """Any simulated floor whose events are at most max_lateness (5 min) out of order:
    the bounded replay's document is keeping everything's."""
    trace = simulate(
        seed=seed,
        agents=6,
        queues=2,
        sites=2,
        hours=hours,
        extra_toml='\n[limits]\nmax_lateness = "5m"\n',
    )
    events = _displaced(trace.events, late_s, seed)
    path, cfg = _setup(tmp_path / f"{seed}-{late_s}-{hours}", trace, events)
    bounded = run_replay([path], cfg)
    whole = run_replay([path], cfg, keep_everything=True)
    assert bounded.summary.bounded
    assert json.loads(_document(bounded)) == json.loads(_document(whole))


# ---- found by comparing both modes over random floorgen traces -------------------------

SMALL_FLOOR = {
    "sites": {"sh": {"timezone": "Asia/Shanghai"}},
    "queues": {"q1": {"site": "sh", "sl_threshold_s": 20}},
    "limits": {"max_lateness": "60s"},
}


def _both(
    tmp_path: Path, events: list[dict[str, Any]], toml: dict[str, Any] | None = None
) -> tuple[ReplayResult, ReplayResult]:
    from helpers import config

    path = write_ndjson(tmp_path / "events.ndjson", events)
    cfg = config(toml or SMALL_FLOOR)
    return run_replay([path], cfg), run_replay([path], cfg, keep_everything=True)


def test_a_ring_before_the_horizon_is_still_the_ring_a_later_answer_takes_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call rung to a1 with nothing open, queued again minutes later and answered by
    a1: the answer takes up the old ring (one offer), so folding must not forget that
    call while its ring is a1's latest event on it."""
    monkeypatch.setattr(replay_module, "CHUNK_BYTES", 100)
    t = 1_795_276_560.0
    events = [
        {"type": "call_routed", "ts": t, "call_id": "c2", "agent": "a1"},
        {"type": "call_queued", "ts": t + 125, "call_id": "c1", "queue": "q1"},
        {"type": "call_queued", "ts": t + 125, "call_id": "c2", "queue": "q1"},
        {"type": "call_answered", "ts": t + 130, "call_id": "c2", "agent": "a1"},
        {"type": "agent_state", "ts": t + 130, "agent": "a1", "state": "wrap_up"},
        {"type": "agent_state", "ts": t + 131.5, "agent": "a1", "state": "available"},
        {"type": "call_ended", "ts": t + 135, "call_id": "c2", "agent": "a1"},
    ]
    bounded, whole = _both(tmp_path, events)
    assert bounded.summary.bounded
    assert _document(whole) == _document(bounded)


def test_roster_violations_of_folded_days_stay_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """late_login and early_logout are derived from the agent's history at read time:
    folding it must not drop the shifts of earlier days (or today's, with a short
    max_lateness) from the document."""
    monkeypatch.setattr(replay_module, "CHUNK_BYTES", 100)
    monday = 1_795_392_000.0  # 2026-11-23T00:00Z
    floor = {
        "sites": {"ldn": {"timezone": "Europe/London"}},
        "queues": {"q1": {"site": "ldn"}},
        "limits": {"max_lateness": "60s"},
        "roster": {
            "shifts": [
                {"agent": "a1", "weekday": day, "start": "08:00", "end": "17:00"}
                for day in ("mon", "tue", "wed")
            ]
        },
    }
    events: list[dict[str, Any]] = []
    for d in range(3):
        b = monday + d * 86400.0
        for hour, state in ((8.5, "available"), (10, "logged_out"), (10.5, "available")):
            events.append(
                {"type": "agent_state", "ts": b + hour * 3600, "agent": "a1", "state": state}
            )
        events.append(
            {"type": "agent_state", "ts": b + 17.5 * 3600, "agent": "a1", "state": "logged_out"}
        )
    bounded, whole = _both(tmp_path, events, floor)
    kinds = [v["kind"] for v in json.loads(_document(whole))["violations"]]
    assert kinds.count("late_login") == kinds.count("early_logout") == 3
    assert _document(whole) == _document(bounded)

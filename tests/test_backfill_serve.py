"""SPEC §9 backfill: a day's events posted hours late to a running `callfloor serve` give
the same document as `callfloor replay` of those events at the snapshot's `as_of`.

A real `callfloor serve` subprocess on a free port (its clock is the wall clock) receives
a 14-hour simulated trace whose events all lie between 15 h and 1 h before now, as when a
day's queue_log is read at start-up; the live snapshot is then compared with a real
`callfloor replay FILE --config CFG --at <as_of>` (``counters.late`` aside).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import ServeProcess, replay_cli
from traces import (
    DAY0,
    Event,
    assert_same_document,
    require,
    shifted,
    simulate,
    split_feeds,
    write_ndjson,
)

HOURS = 14.0


@pytest.fixture
def floor(tmp_path: Path) -> tuple[Path, list[Event]]:
    """The default simulated floor's configuration and a 14-hour trace ending 1 h ago.

    The trace is simulated from a fixed start (06:00 UTC, so both sites are busy) and
    moved to now: the events are the same on every run, only their dates move.
    """
    trace = simulate(seed=5, agents=40, queues=6, sites=2, hours=HOURS, start=DAY0 + 6 * 3600.0)
    config = tmp_path / "callfloor.toml"
    config.write_text(trace.toml, encoding="utf-8")
    begin = time.time() - (HOURS + 1.0) * 3600.0
    events = shifted(trace.events, round(begin - trace.start, 3))
    return config, events


@pytest.fixture
def server(floor: tuple[Path, list[Event]]) -> Iterator[ServeProcess]:
    srv = ServeProcess(floor[0])
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _backfill_then_compare(
    tmp_path: Path, server: ServeProcess, config: Path, events: list[Event], posted: list[Event]
) -> None:
    now = time.time()
    require(
        all(now - 15.5 * 3600 < float(e["ts"]) < now - 3500 for e in events),
        "the trace does not lie between 15 h and 1 h before now",
    )
    server.post_all(posted)
    live = server.snapshot_after(len(posted))
    require(live["counters"]["late"] > 0, "nothing was late: this is no backfill")
    trace = write_ndjson(tmp_path / "trace.ndjson", events)
    # The alert timeline is derived again after the late events, in slices, once they
    # are applied: the live list converges to the replay's (within a minute here).
    deadline = time.monotonic() + 60.0
    while True:
        as_of = float(live["as_of"])
        replayed = replay_cli(config, trace, as_of)
        if _alerts(live) == _alerts(replayed) or time.monotonic() > deadline:
            break
        time.sleep(2.0)
        live = server.snapshot_after(len(posted))
    require(replayed["as_of"] == as_of, f"replay as_of {replayed['as_of']} != {as_of}")
    assert_same_document(live, replayed, "backfilled live snapshot and replay")


def _alerts(doc: Event) -> list[str]:
    return sorted(json.dumps(a, sort_keys=True) for a in doc["alerts"])


def test_a_day_posted_hours_late_equals_the_replay(
    tmp_path: Path, server: ServeProcess, floor: tuple[Path, list[Event]]
) -> None:
    """A 14-hour trace posted in ts order, every event hours late, gives a live snapshot
    equal to `callfloor replay` at the snapshot's as_of, counters.late aside."""
    config, events = floor
    _backfill_then_compare(tmp_path, server, config, events, events)


def test_agent_feed_posted_before_the_call_feed_equals_the_replay(
    tmp_path: Path, server: ServeProcess, floor: tuple[Path, list[Event]]
) -> None:
    """The day's agent states posted first and its call events after them, all hours late,
    give a live snapshot equal to `callfloor replay` at its as_of, counters.late aside."""
    config, events = floor
    calls, agent_states = split_feeds(events)
    _backfill_then_compare(tmp_path, server, config, events, agent_states + calls)

"""Roster adherence (SPEC §4): late_login and early_logout at exact site-local instants."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import config, decode, ev, run
from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.config import ConfigError, load_config
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document

SH = ZoneInfo("Asia/Shanghai")
LON = ZoneInfo("Europe/London")


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> float:
    """Epoch seconds of a local wall-clock time."""
    return datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp()


def cfg(shifts: list[dict[str, str]], tz: str = "Asia/Shanghai", **roster: Any) -> Any:
    """A configuration with one site ``s`` in ``tz`` and these inline shifts."""
    return config({"sites": {"s": {"timezone": tz}}, "roster": {"shifts": shifts, **roster}})


def state(ts: float, st: str, agent: str = "a1") -> dict[str, Any]:
    """An agent_state at site s."""
    return ev("agent_state", ts, agent=agent, state=st, site="s")


def roster_of(doc: dict[str, Any]) -> list[tuple[str, str, float, float | None, float]]:
    """The roster violations of a document as tuples."""
    return [
        (v["kind"], v["agent"], v["started_at"], v["ended_at"], v["value"])
        for v in doc["violations"]
        if v["kind"] in ("late_login", "early_logout")
    ]


# A 2026-11-23 (Monday) 08:00-17:00 shift in Shanghai (UTC+8).
MON = at(SH, 2026, 11, 23, 0)
START = at(SH, 2026, 11, 23, 8)
END = at(SH, 2026, 11, 23, 17)
SHIFT = [{"agent": "a1", "date": "2026-11-23", "start": "08:00", "end": "17:00"}]


def test_late_login_starts_at_shift_start_plus_grace_and_ends_at_login() -> None:
    """Logged in at 08:12 for an 08:00 shift: late from 08:05 to 08:12, value 420 s."""
    events = [state(MON + 60, "logged_out"), state(START + 720, "available")]
    doc = run(events, cfg(SHIFT), at=START + 3600)
    assert roster_of(doc) == [("late_login", "a1", START + 300, START + 720, 420.0)]
    assert doc["violations"][0]["severity"] == "warning"


def test_late_login_is_active_with_its_value_so_far() -> None:
    """Not logged in at 08:10: active since 08:05, 300 s late so far."""
    doc = run([state(MON + 60, "logged_out")], cfg(SHIFT), at=START + 600)
    assert roster_of(doc) == [("late_login", "a1", START + 300, None, 300.0)]


def test_login_within_grace_raises_nothing() -> None:
    """Logged in at 08:04 (grace 5 min): no violation; nor with a custom grace of 1m."""
    events = [state(MON + 60, "logged_out"), state(START + 240, "available")]
    assert roster_of(run(events, cfg(SHIFT), at=END + 60)) == []
    late = roster_of(run(events, cfg(SHIFT, grace_login="1m"), at=END + 60))
    assert late == [("late_login", "a1", START + 60, START + 240, 180.0)]


def test_late_login_for_an_agent_first_seen_after_the_deadline() -> None:
    """An agent whose first agent_state is at 08:30 was not logged in at 08:05."""
    doc = run([state(START + 1800, "available")], cfg(SHIFT), at=START + 3600)
    assert roster_of(doc) == [("late_login", "a1", START + 300, START + 1800, 1500.0)]


def test_late_login_ends_at_shift_end_when_the_agent_never_logs_in() -> None:
    """Absent all shift: late from 08:05 to 17:00."""
    doc = run([state(MON + 60, "logged_out")], cfg(SHIFT), at=END + 3600)
    assert roster_of(doc) == [("late_login", "a1", START + 300, END, END - START - 300)]


def test_early_logout_starts_at_the_logout_and_ends_at_shift_end() -> None:
    """Logged out at 16:30 for a 17:00 end: early from 16:30 to 17:00, value 1800 s."""
    events = [state(START - 60, "available"), state(END - 1800, "logged_out")]
    doc = run(events, cfg(SHIFT), at=END + 600)
    assert roster_of(doc) == [("early_logout", "a1", END - 1800, END, 1800.0)]
    active = run(events, cfg(SHIFT), at=END - 600)
    assert roster_of(active) == [("early_logout", "a1", END - 1800, None, 1200.0)]


def test_early_logout_ends_when_the_agent_logs_back_in() -> None:
    """Out 12:00-12:20 mid-shift: early_logout ends at 12:20."""
    noon = at(SH, 2026, 11, 23, 12)
    events = [
        state(START - 60, "available"),
        state(noon, "logged_out"),
        state(noon + 1200, "available"),
        state(END + 60, "logged_out"),
    ]
    doc = run(events, cfg(SHIFT), at=END + 600)
    assert roster_of(doc) == [("early_logout", "a1", noon, noon + 1200, 1200.0)]


def test_logout_within_the_logout_grace_raises_nothing() -> None:
    """Logged out at 16:59 (grace 2 min): no violation."""
    events = [state(START - 60, "available"), state(END - 60, "logged_out")]
    assert roster_of(run(events, cfg(SHIFT), at=END + 600)) == []


def test_shift_across_midnight() -> None:
    """A 22:00-06:00 shift: late at 22:05, and a logout at 05:00 next day is early."""
    night = [{"agent": "a1", "weekday": "mon", "start": "22:00", "end": "06:00"}]
    start = at(SH, 2026, 11, 23, 22)
    out = at(SH, 2026, 11, 24, 5)
    end = at(SH, 2026, 11, 24, 6)
    events = [
        state(MON + 60, "logged_out"),
        state(start + 600, "available"),
        state(out, "logged_out"),
    ]
    doc = run(events, cfg(night), at=end + 3600)
    assert roster_of(doc) == [
        ("late_login", "a1", start + 300, start + 600, 300.0),
        ("early_logout", "a1", out, end, 3600.0),
    ]


def test_shift_is_local_time_on_both_sides_of_a_dst_change() -> None:
    """Europe/London springs forward on 2026-03-29: an 08:00 shift is 08:00 GMT on
    Saturday (08:00 UTC) and 08:00 BST on Sunday (07:00 UTC)."""
    shifts = [
        {"agent": "a1", "weekday": d, "start": "08:00", "end": "16:00"} for d in ("sat", "sun")
    ]
    sat = at(LON, 2026, 3, 28, 8)
    sun = at(LON, 2026, 3, 29, 8)
    assert sat == datetime(2026, 3, 28, 8, tzinfo=ZoneInfo("UTC")).timestamp()
    assert sun == datetime(2026, 3, 29, 7, tzinfo=ZoneInfo("UTC")).timestamp()
    events = [
        state(at(LON, 2026, 3, 28, 0, 1), "logged_out"),
        state(sat + 1200, "available"),
        state(at(LON, 2026, 3, 28, 16, 30), "logged_out"),
        state(sun + 900, "available"),
    ]
    doc = run(events, cfg(shifts, tz="Europe/London"), at=sun + 3600)
    assert roster_of(doc) == [
        ("late_login", "a1", sat + 300, sat + 1200, 900.0),
        ("late_login", "a1", sun + 300, sun + 900, 600.0),
    ]


def test_agent_on_leave_raises_nothing() -> None:
    """A dated ``off`` row overrides the weekday shift; an agent with no row has none."""
    shifts = [
        {"agent": "a1", "weekday": "mon", "start": "08:00", "end": "17:00"},
        {"agent": "a1", "date": "2026-11-23", "start": "off"},
        {"agent": "a3", "weekday": "tue", "start": "08:00", "end": "17:00"},
    ]
    events = [
        state(MON + 60, "logged_out"),
        state(MON + 60, "logged_out", agent="a2"),
        state(MON + 60, "logged_out", agent="a3"),
    ]
    assert roster_of(run(events, cfg(shifts), at=END + 60)) == []


def test_roster_violations_are_the_same_in_any_arrival_order() -> None:
    """Shuffled agent_state events give the same roster violations."""
    noon = at(SH, 2026, 11, 23, 12)
    events = [
        state(MON + 60, "logged_out"),
        state(START + 400, "available"),
        state(noon, "logged_out"),
        state(noon + 300, "not_ready"),
        state(END - 900, "logged_out"),
    ]
    expected = roster_of(run(events, cfg(SHIFT), at=END + 60))
    assert [v[0] for v in expected] == ["late_login", "early_logout", "early_logout"]
    rng = random.Random(7)
    for _ in range(10):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert roster_of(run(shuffled, cfg(SHIFT), at=END + 60)) == expected


def test_shift_boundary_timer_reports_late_login_at_its_instant() -> None:
    """With no event, the clock passing 08:05 puts late_login in the change set."""
    proc = FloorProcessor(cfg(SHIFT))
    proc.apply(decode(state(MON + 60, "logged_out")))
    proc.drain_changes()
    assert proc.timers.next_at() == START + 300
    proc.tick(START + 300)
    changes = proc.drain_changes()
    assert [(c.kind, c.started_at, c.ended_at) for c in changes.violations] == [
        ("late_login", START + 300, None)
    ]
    assert proc.timers.next_at() == END  # the next boundary


def test_bad_csv_row_stops_start_up_with_file_line_and_problem(tmp_path: Path) -> None:
    """A shift start that is not HH:MM names the file, the line and the problem."""
    csv = tmp_path / "roster.csv"
    csv.write_text("agent,day,start,end\na1,mon,08:00,17:00\na2,tue,8am,17:00\n")
    toml = tmp_path / "callfloor.toml"
    toml.write_text('[roster]\nfile = "roster.csv"\n')
    with pytest.raises(ConfigError) as err:
        load_config(toml)
    assert str(err.value) == (
        f"{csv}: line 3: shift start: expected HH:MM (00:00 to 23:59), got '8am'"
    )


def test_csv_roster_loads_relative_to_the_config_file(tmp_path: Path) -> None:
    """Rows of the CSV file and inline shifts both make the roster."""
    (tmp_path / "roster.csv").write_text(
        "# comment\na1,2026-11-23,08:00,17:00\na2,sun,22:00,06:00\n"
    )
    toml = tmp_path / "callfloor.toml"
    toml.write_text(
        '[roster]\nfile = "roster.csv"\ngrace_login = "10m"\n'
        '[[roster.shifts]]\nagent = "a3"\nweekday = "mon"\nstart = "09:00"\nend = "18:00"\n'
    )
    roster = load_config(toml).roster
    assert roster.grace_login_s == 600.0 and roster.grace_logout_s == 120.0
    assert [(s.agent, s.date, s.weekday, s.start_min, s.end_min) for s in roster.shifts] == [
        ("a1", "2026-11-23", None, 480, 1020),
        ("a2", None, 6, 1320, 360),
        ("a3", None, 0, 540, 1080),
    ]


@pytest.mark.parametrize(
    ("shift", "problem"),
    [
        ({"agent": "a1", "start": "08:00", "end": "17:00"}, "roster.shifts[0]: give exactly one"),
        ({"agent": "a1", "weekday": "mo", "start": "08:00", "end": "17:00"}, "expected a date"),
        ({"agent": "a1", "date": "2026-02-30", "start": "08:00", "end": "9"}, "not a real date"),
        ({"agent": "a1", "weekday": "mon", "start": "off"}, "only a dated row can be off"),
        ({"agent": "a1", "weekday": "mon", "start": "08:00", "end": "24:00"}, "shift end"),
        ({"agent": "a1", "weekday": "mon", "start": "08:00", "x": "1"}, "roster.shifts[0].x"),
    ],
)
def test_bad_inline_shift_names_its_key(shift: dict[str, str], problem: str) -> None:
    """A bad [[roster.shifts]] entry stops start-up naming the key and the problem."""
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        cfg([shift])


def test_shift_timer_survives_a_checkpoint() -> None:
    """A restored processor still reports late_login at 08:05 from its restored timer."""
    from callfloor.processors.state import decode_checkpoint, encode_checkpoint

    proc = FloorProcessor(cfg(SHIFT))
    proc.apply(decode(state(MON + 60, "logged_out")))
    restored = decode_checkpoint(cfg(SHIFT), encode_checkpoint(proc)).processor
    assert restored.shift_timers == {"a1": START + 300}
    restored.drain_changes()
    restored.tick(START + 400)
    changes = restored.drain_changes()
    assert [(c.kind, c.started_at, c.value) for c in changes.violations] == [
        ("late_login", START + 300, 100.0)
    ]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-3600, 20 * 3600), st.sampled_from(("logged_out", "available", "on_call"))
        ),
        min_size=1,
        max_size=25,
        unique_by=lambda step: step[0],  # equal times keep arrival order: not shuffled
    ),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 24), max_size=6),
)
def test_reads_between_events_do_not_change_roster_violations(
    steps: list[tuple[int, str]], rng: Any, reads: list[int]
) -> None:
    """Events in any order with reads (change sets, documents) between them give the
    violations a processor that read only at the end gives."""
    shifts = [
        {"agent": "a1", "date": "2026-11-23", "start": "08:00", "end": "12:00"},
        {"agent": "a1", "date": "2026-11-23", "start": "13:00", "end": "02:00"},
    ]
    events = [state(START + dt, s) for dt, s in steps]
    end = START + 21 * 3600
    expected = roster_of(run(events, cfg(shifts), at=end))
    shuffled = list(events)
    rng.shuffle(shuffled)
    proc = FloorProcessor(cfg(shifts))
    for i, e in enumerate(shuffled):
        proc.apply(decode(e))
        if i in reads:
            proc.drain_changes()
            build_document(proc)
    proc.tick(end)
    assert roster_of(build_document(proc)) == expected

# ruff: noqa: E501
"""SPEC §7: the replay document, --at, determinism, and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from spec_util import (
    T0,
    WINDOW_KEYS,
    abandoned,
    answered,
    approx,
    ended,
    ev,
    live,
    queued,
    state,
    win,
    write_events,
)

ROOT = Path(__file__).resolve().parents[2]

TOP_KEYS = ["as_of", "queues", "sites", "agents", "violations", "alerts", "counters"]
COUNTER_KEYS = {"events", "rejected", "duplicates", "orphaned", "late"}
QUEUE_LIVE_KEYS = {
    "waiting",
    "longest_wait_s",
    "agents",
    "occupancy",
    "arrival_rate_per_s",
    "required_agents",
    "projected_service_level",
}
SITE_LIVE_KEYS = {"waiting", "longest_wait_s", "agents", "occupancy", "arrival_rate_per_s"}


def _busy_trace():
    return [
        state(T0 - 100, "a1", "available", queues=["sales"]),
        state(T0 - 100, "a2", "not_ready", reason="break", queues=["sales", "support"]),
        queued(T0, "c1"),
        queued(T0 + 1, "c2", queue="support", channel="chat"),
        answered(T0 + 8, "c1"),
        state(T0 + 8, "a1", "on_call"),
        abandoned(T0 + 30, "c2"),
        ended(T0 + 100, "c1"),
        state(T0 + 101, "a1", "wrap_up"),
        state(T0 + 160, "a1", "available"),
        queued(T0 + 170, "c3"),
    ]


def test_document_top_level_keys(run):
    """The document has exactly the §7 top-level keys."""
    doc = run(_busy_trace())
    assert set(doc) == set(TOP_KEYS)
    assert set(doc["counters"]) == COUNTER_KEYS
    assert isinstance(doc["violations"], list)
    assert isinstance(doc["alerts"], list)


def test_document_queue_and_site_shape(run):
    """Queues have site/windows/live; live values have the §3 keys; sites have windows/live."""
    doc = run(_busy_trace())
    for name, q in doc["queues"].items():
        assert {"site", "windows", "live"} <= set(q), name
        assert set(q["live"]) == QUEUE_LIVE_KEYS, name
        for w in q["windows"].values():
            assert set(w) == set(WINDOW_KEYS)
    for s in doc["sites"].values():
        assert {"windows", "live"} <= set(s)
        assert set(s["live"]) >= SITE_LIVE_KEYS


def test_numbers_are_plain_and_rates_fractions(run):
    """Times are epoch-second numbers and rates are fractions in [0, 1]."""
    doc = run(_busy_trace())
    assert isinstance(doc["as_of"], (int, float)) and not isinstance(doc["as_of"], bool)
    w = win(doc)
    assert w["service_level"] == approx(1.0)
    assert isinstance(w["asa_s"], (int, float))
    a = doc["agents"]["a1"]
    assert isinstance(a["state_since"], (int, float))
    assert a["state_since"] == approx(T0 + 160)
    text = json.dumps(doc)
    assert "NaN" not in text and "Infinity" not in text


def test_configured_queue_without_events_listed(run):
    """A configured queue with no events is listed with its configured site, and that site too."""
    toml = (
        '[sites.sh]\ntimezone = "Asia/Shanghai"\ninterval_minutes = 30\n[queues.vip]\nsite = "sh"\n'
    )
    doc = run([queued(T0, "c1")], toml)
    assert doc["queues"]["vip"]["site"] == "sh"
    assert "sh" in doc["sites"]
    assert live(doc, "vip")["waiting"] == 0


def test_queue_site_from_first_call_queued(run):
    """An unconfigured queue's site is that of its first call_queued."""
    doc = run([queued(T0, "c1", site="s1"), queued(T0 + 5, "c2", site="s2")])
    assert doc["queues"]["sales"]["site"] == "s1"
    assert doc["sites"]["s1"]["windows"]["15m"]["offered"] == 2


def test_configured_queue_site_wins(run):
    """A configured queue's site overrides the site on its events."""
    doc = run([queued(T0, "c1", site="elsewhere")], '[queues.sales]\nsite = "hq"\n')
    assert doc["queues"]["sales"]["site"] == "hq"
    assert doc["sites"]["hq"]["windows"]["15m"]["offered"] == 1


def test_queue_from_rejected_event_not_listed(run):
    """Only valid call_queued events name queues."""
    doc = run([queued(T0, "c1"), ev("call_queued", "garbage", call_id="c2", queue="ghost")])
    assert "ghost" not in doc["queues"]


def test_replay_deterministic(run):
    """The same replay twice gives byte-identical JSON."""
    a = json.dumps(run(_busy_trace(), at=T0 + 5000))
    b = json.dumps(run(_busy_trace(), at=T0 + 5000))
    assert a == b


def test_at_cuts_later_events(run):
    """--at gives the state as if only events with ts <= at had arrived."""
    doc = run(_busy_trace(), at=T0 + 20)
    w = win(doc)
    assert (w["offered"], w["answered"], w["handled"]) == (1, 1, 0)
    assert live(doc, "support")["waiting"] == 1
    assert doc["agents"]["a1"]["state"] == "on_call"
    assert doc["as_of"] == approx(T0 + 20)


def test_at_equals_event_ts_includes_it(run):
    """An event with ts == --at is included."""
    doc = run(_busy_trace(), at=T0 + 8)
    assert win(doc)["answered"] == 1


def test_at_ignores_later_events_out_of_file_order(run):
    """Events after --at are ignored even when an earlier-ts event follows them in the file."""
    events = [queued(T0, "c1"), answered(T0 + 300, "c1"), queued(T0 + 100, "c2")]
    doc = run(events, at=T0 + 200)
    w = win(doc)
    assert (w["offered"], w["answered"]) == (2, 0)
    assert live(doc)["waiting"] == 2
    assert doc["counters"]["late"] == 0


def test_at_counters_exclude_later_events(run):
    """Counters at --at do not count events after --at."""
    events = [
        queued(T0, "c1"),
        answered(T0 + 5, "c1"),
        answered(T0 + 6, "c1"),
        answered(T0 + 7, "zz"),
    ]
    assert run(events, at=T0 + 5)["counters"]["orphaned"] == 0
    assert run(events)["counters"]["orphaned"] == 2


def test_default_as_of_is_last_valid_event(run):
    """Without --at, as_of is the ts of the last valid event; an invalid event with a later
    readable ts did not arrive by then, so it is not counted (same rule as an explicit --at)."""
    events = [queued(T0, "c1"), answered(T0 + 7, "c1"), ev("call_weird", T0 + 999, call_id="c1")]
    doc = run(events)
    assert doc["as_of"] == approx(T0 + 7)
    assert doc["counters"]["rejected"] == 0


def test_default_cut_counts_earlier_invalid_events(run):
    """Without --at, invalid events before the last valid one are counted as rejected."""
    events = [queued(T0, "c1"), ev("call_weird", T0 + 3, call_id="c1"), answered(T0 + 7, "c1")]
    doc = run(events)
    assert doc["counters"]["rejected"] == 1


def test_at_in_future_advances_clock(run):
    """--at after the last event advances every time-based value to it."""
    doc = run([queued(T0, "c1")], at=T0 + 3600)
    assert doc["as_of"] == approx(T0 + 3600)
    assert live(doc)["longest_wait_s"] == approx(3600)
    assert win(doc, window="60m")["sl_offered"] == 1


def test_multiple_files_in_order(run, tmp_path):
    """Several files are read in the given order as one stream."""
    from callfloor.config import parse_config
    from callfloor.replay import replay_document

    f1 = write_events(tmp_path / "a.ndjson", [queued(T0, "c1")])
    f2 = write_events(tmp_path / "b.ndjson", [answered(T0 + 5, "c1")])
    doc = replay_document([f1, f2], parse_config({}, "inline"), None)
    assert win(doc)["answered"] == 1
    assert doc["as_of"] == approx(T0 + 5)


def test_blank_lines_ignored(run):
    """Blank NDJSON lines are not events."""
    doc = run([queued(T0, "c1"), "", answered(T0 + 5, "c1")])
    assert doc["counters"]["rejected"] == 0
    assert win(doc)["answered"] == 1


def test_malformed_json_line_rejected(run):
    """A line that is not JSON is rejected and the rest still applies."""
    doc = run([queued(T0, "c1"), '{"type": "call_answered", ', answered(T0 + 5, "c1")])
    assert doc["counters"]["rejected"] == 1
    assert win(doc)["answered"] == 1


# ---- the real CLI -------------------------------------------------------------------


def _cli(tmp_path: Path, at: str | None):
    ev_path = write_events(tmp_path / "events.ndjson", _busy_trace())
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[queues.sales]\nsite = "hq"\n', encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "callfloor",
        "replay",
        str(ev_path),
        "--config",
        str(cfg),
        "--output",
        "json",
    ]
    if at is not None:
        cmd += ["--at", at]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def test_cli_replay_json(tmp_path):
    """`python -m callfloor replay FILE --config CFG --output json --at TS` prints the §7 document."""
    out = _cli(tmp_path, str(T0 + 20))
    doc = json.loads(out)
    assert set(doc) == set(TOP_KEYS)
    assert doc["as_of"] == approx(T0 + 20)
    assert doc["queues"]["sales"]["site"] == "hq"
    w = doc["queues"]["sales"]["windows"]["15m"]
    assert (w["offered"], w["answered"], w["answered_in_sl"]) == (1, 1, 1)


def test_cli_replay_deterministic_bytes(tmp_path):
    """The CLI prints the same bytes for the same replay."""
    assert _cli(tmp_path, str(T0 + 20)) == _cli(tmp_path, str(T0 + 20))


def test_cli_matches_library(tmp_path, run):
    """The CLI document equals replay_document for the same input."""
    out = json.loads(_cli(tmp_path, str(T0 + 5000)))
    doc = run(_busy_trace(), '[queues.sales]\nsite = "hq"\n', at=T0 + 5000)
    assert out == json.loads(json.dumps(doc))


def test_at_before_first_event(run):
    """--at before every event gives a document with none of them applied."""
    doc = run([queued(T0, "c1"), state(T0, "a1", "available")], at=T0 - 100)
    assert doc["as_of"] == approx(T0 - 100)
    assert "a1" not in doc["agents"]
    assert "sales" not in doc["queues"]
    assert doc["counters"]["events"] == 0


def test_cli_at_rfc3339(tmp_path):
    """The CLI accepts --at as RFC 3339 with an offset."""
    doc = json.loads(_cli(tmp_path, "2026-11-23T10:00:20+01:00"))  # = T0 + 20
    assert doc["as_of"] == approx(T0 + 20)


def test_at_excludes_invalid_events_after_at(run):
    """An invalid event whose ts is after --at never arrived, so it is not counted as rejected."""
    events = [queued(T0, "c1"), ev("call_weird", T0 + 999, call_id="x")]
    assert run(events, at=T0 + 20)["counters"]["rejected"] == 0
    assert run(events, at=T0 + 1000)["counters"]["rejected"] == 1

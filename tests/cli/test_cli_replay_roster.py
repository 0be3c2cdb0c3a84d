"""`callfloor replay` with a roster CSV: roster violations and agent day figures in the
document; a bad roster row stops it with the file, the line and the problem."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callfloor.cli import main

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 23, 8, tzinfo=SH).timestamp()


def _setup(tmp_path: Path, row: str) -> tuple[Path, Path]:
    (tmp_path / "roster.csv").write_text(f"agent,day,start,end\n{row}\n")
    cfg = tmp_path / "callfloor.toml"
    cfg.write_text(
        '[sites.sh]\ntimezone = "Asia/Shanghai"\n[queues.sales]\nsite = "sh"\n'
        '[roster]\nfile = "roster.csv"\n'
    )
    events = [
        {"type": "agent_state", "ts": START - 3600, "agent": "a1", "state": "logged_out",
         "site": "sh"},
        {"type": "agent_state", "ts": START + 600, "agent": "a1", "state": "available",
         "site": "sh", "queues": ["sales"]},
        {"type": "call_queued", "ts": START + 700, "call_id": "c1", "queue": "sales", "site": "sh"},
        {"type": "call_routed", "ts": START + 702, "call_id": "c1", "agent": "a1", "site": "sh"},
        {"type": "call_answered", "ts": START + 705, "call_id": "c1", "agent": "a1", "site": "sh"},
        {"type": "call_ended", "ts": START + 765, "call_id": "c1", "agent": "a1", "site": "sh"},
        {"type": "agent_state", "ts": START + 765, "agent": "a1", "state": "available",
         "site": "sh"},
    ]  # fmt: skip
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return cfg, path


def test_replay_lists_late_login_and_the_day_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logged in at 08:10 for an 08:00 shift: late_login 08:05-08:10 (300 s); one call
    rung and answered: offered 1, answer rate 1.0, handled 1 in 60 s."""
    cfg, events = _setup(tmp_path, "a1,mon,08:00,17:00")
    assert main(["replay", str(events), "--config", str(cfg), "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["violations"] == [
        {"kind": "late_login", "agent": "a1", "severity": "warning",
         "started_at": START + 300, "ended_at": START + 600, "value": 300.0},
    ]  # fmt: skip
    a1 = doc["agents"]["a1"]
    assert (a1["offered_today"], a1["answer_rate_today"], a1["handled_today"]) == (1, 1.0, 1)
    assert a1["aht_today_s"] == 60.0


def test_replay_stops_on_a_bad_roster_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A weekday that is not one stops the replay, naming the file and the line."""
    cfg, events = _setup(tmp_path, "a1,monday,08:00,17:00")
    assert main(["replay", str(events), "--config", str(cfg), "--output", "json"]) != 0
    err = capsys.readouterr().err
    assert f"{tmp_path / 'roster.csv'}: line 2: expected a date (YYYY-MM-DD) or a weekday" in err

"""Public call-centre data (../shared/data/real, read in place, never copied) through replay.

Skipped when the folder is absent. The expected figures are computed from each file's
own columns, independently of callfloor.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callfloor.config import parse_config
from callfloor.replay import replay_document

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
BANGS = REAL / "simulated-call-centre-db-bangs" / "simulated_call_centre.csv"
TECHNION = REAL / "technion-anonymous-bank-dec1999-subset" / "clean_data.csv"


def _epoch(day: str, clock: str, fmt: str, zone: str) -> float:
    return datetime.strptime(f"{day} {clock}", fmt).replace(tzinfo=ZoneInfo(zone)).timestamp()


def _write(tmp_path: Path, events: list[dict[str, object]]) -> Path:
    events.sort(key=lambda e: e["ts"])  # type: ignore[arg-type, return-value]
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.mark.skipif(not BANGS.exists(), reason="real data folder absent")
def test_bangs_day_service_level_matches_the_csv(tmp_path: Path) -> None:
    """For one day of the Queue-Simulator log (SL 90 % in 60 s), today's SL, ASA, answered
    and AHT equal what the CSV's own columns give."""
    rows = []
    with open(BANGS, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["date"] == "2021-03-15":
                rows.append(row)
    assert rows
    events: list[dict[str, object]] = []
    fmt = "%Y-%m-%d %I:%M:%S %p"
    for row in rows:
        cid = f"c{row['call_id']}"
        queued = _epoch(row["date"], row["call_started"], fmt, "America/New_York")
        answered = queued + float(row["wait_length"])
        ended = answered + float(row["service_length"])
        events += [
            {"type": "call_queued", "ts": queued, "call_id": cid, "queue": "line", "site": "ny"},
            {"type": "call_answered", "ts": answered, "call_id": cid, "agent": "a"},
            {"type": "call_ended", "ts": ended, "call_id": cid, "agent": "a"},
            # No wrap-up in this data: the agent's next state completes the handling.
            {"type": "agent_state", "ts": ended, "agent": "a", "state": "available"},
        ]
    cfg = parse_config(
        {
            "sites": {"ny": {"timezone": "America/New_York", "interval_minutes": 30}},
            "queues": {"line": {"site": "ny", "sl_threshold_s": 60, "sl_target": 0.9}},
        }
    )
    doc = replay_document([_write(tmp_path, events)], cfg)
    today = doc["queues"]["line"]["windows"]["today"]
    met = sum(row["meets_standard"] == "TRUE" for row in rows)
    missed = len(rows) - met
    assert today["answered"] == len(rows)
    assert (today["answered_in_sl"], today["sl_offered"]) == (met, met + missed)
    assert today["service_level"] == pytest.approx(met / len(rows))
    waits = [float(row["wait_length"]) for row in rows]
    assert today["asa_s"] == pytest.approx(sum(waits) / len(waits))
    assert today["max_wait_s"] == max(waits)
    talks = [float(row["service_length"]) for row in rows]
    assert today["handled"] == len(rows)
    assert today["aht_s"] == pytest.approx(sum(talks) / len(talks))


@pytest.mark.skipif(not TECHNION.exists(), reason="real data folder absent")
def test_technion_day_per_agent_answers_match_the_csv(tmp_path: Path) -> None:
    """For one day of the Technion Anonymous Bank subset, each agent's answered_today and the
    queue's ASA equal the counts and mean queue time in the file."""
    rows = []
    with open(TECHNION, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["date"] == "991201":
                rows.append(row)
    assert rows
    events: list[dict[str, object]] = []
    fmt = "%y%m%d %H:%M:%S"
    per_agent: dict[str, int] = {}
    for i, row in enumerate(rows):
        cid = f"c{i}"
        answered = _epoch(row["date"], row["ser_start"], fmt, "Asia/Jerusalem")
        queued = answered - float(row["q_time"])
        agent = row["server"]
        per_agent[agent] = per_agent.get(agent, 0) + 1
        events += [
            {
                "type": "agent_state",
                "ts": queued,
                "agent": agent,
                "state": "available",
                "site": "tlv",
            },
            {"type": "call_queued", "ts": queued, "call_id": cid, "queue": "vru", "site": "tlv"},
            {"type": "call_answered", "ts": answered, "call_id": cid, "agent": agent},
        ]
    cfg = parse_config({"sites": {"tlv": {"timezone": "Asia/Jerusalem"}}})
    doc = replay_document([_write(tmp_path, events)], cfg)
    today = doc["queues"]["vru"]["windows"]["today"]
    assert today["answered"] == len(rows)
    q_times = [float(row["q_time"]) for row in rows]
    assert today["asa_s"] == pytest.approx(sum(q_times) / len(q_times))
    for agent, n in per_agent.items():
        assert doc["agents"][agent]["answered_today"] == n

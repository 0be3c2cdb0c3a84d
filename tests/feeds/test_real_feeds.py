"""The real PBXware queue_log export and the Amazon Connect example, through replay --format.

The data is read in place from ../shared/data/real (never copied); these tests skip when
the folder is absent. The expected numbers are worked out from the export's own rows
here, independently of the mapper: each ENTERQUEUE row is a leg, its wait is the
``date_time`` of the row that ended it less its own (which equals PBXware's ``htime``),
and the README's quick facts pin the counts.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callfloor.config import parse_config
from callfloor.replay import replay_document, run_replay

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
PBXWARE = REAL / "asterisk-queue-log-pbxware-2018" / "queue_log.csv"
CONNECT = REAL / "amazon-connect-agent-events-doc" / "agent_events_acw_example.jsonl"

# The export's `time` column is `date_time` shown at UTC-5 (1543602753 is 13:32:33 there).
ZONE = "Etc/GMT+5"
LOCAL = timedelta(hours=-5)


def _rows() -> list[dict[str, str]]:
    with open(PBXWARE, newline="") as fh:
        return list(csv.DictReader(fh))


def _legs(rows: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Each call's leg: when it entered, and the row that ended it (if any)."""
    legs: dict[str, dict[str, Any]] = {}
    for row in rows:
        event, call, ts = row["event"], row["callid"], int(row["date_time"])
        if event == "ENTERQUEUE":
            legs[call] = {"queued": ts, "end": None, "how": None}
        elif event in ("CONNECT", "ABANDON", "EXITWITHTIMEOUT") and legs[call]["end"] is None:
            legs[call]["end"], legs[call]["how"] = ts, event
            assert ts - legs[call]["queued"] == int(row["htime"])  # the wait PBXware logged
    return legs


@pytest.mark.skipif(not PBXWARE.exists(), reason="real data folder absent")
def test_pbxware_export_metrics_match_its_rows() -> None:
    """Offered, answered, abandoned, dequeued, SL at 20 s, ASA, max wait and each agent's
    misses of the real PBXware export equal what its rows give."""
    rows = _rows()
    legs = _legs(rows)
    as_of = max(int(r["date_time"]) for r in rows)  # the last row: 2018-12-04 12:00:51 local
    waits = {
        how: [leg["end"] - leg["queued"] for leg in legs.values() if leg["how"] == how]
        for how in ("CONNECT", "ABANDON", "EXITWITHTIMEOUT")
    }
    open_waits = [as_of - leg["queued"] for leg in legs.values() if leg["end"] is None]

    # Worked out from the rows (and the README's quick facts):
    offered = len(legs)  # one leg per ENTERQUEUE row: 108
    answered = len(waits["CONNECT"])  # 93
    short = [w for w in waits["ABANDON"] if w <= 5]  # one caller left after 5 s: short
    abandoned = len(waits["ABANDON"]) - len(short)  # 12 ABANDON rows - 1 short = 11
    dequeued = len(waits["EXITWITHTIMEOUT"])  # one, after 300 s
    met = sum(w <= 20 for w in waits["CONNECT"])  # answered within 20 s: 39 (README: 39/93)
    # Legs with a service-level event: every answer; abandons and the timeout after more
    # than 20 s (all 11 long abandons waited 21 s or more); the two legs still waiting at
    # the last row, if they passed 20 s (one waited 52 s, the other has just arrived).
    sl_offered = answered + sum(w > 20 for w in waits["ABANDON"] + waits["EXITWITHTIMEOUT"])
    sl_offered += sum(w > 20 for w in open_waits)
    assert (offered, answered, abandoned, len(short), dequeued) == (108, 93, 11, 1, 1)
    assert (met, sl_offered, sorted(open_waits)) == (39, 106, [0, 52])

    cfg = parse_config({"windows": {"rolling": ["7d"]}, "sites": {"default": {"timezone": ZONE}}})
    result = run_replay([PBXWARE], cfg, fmt="queue_log_csv")
    doc: dict[str, Any] = replay_document([PBXWARE], cfg, fmt="queue_log_csv")
    week = doc["queues"]["IT"]["windows"]["7d"]  # the whole export: 2018-11-29 to 12-04
    assert week["offered"] == offered
    assert week["answered"] == answered
    assert (week["abandoned"], week["short_abandoned"]) == (abandoned, len(short))
    assert week["dequeued"] == dequeued
    assert (week["answered_in_sl"], week["sl_offered"]) == (met, sl_offered)
    assert week["service_level"] == pytest.approx(39 / 106)
    assert week["asa_s"] == pytest.approx(sum(waits["CONNECT"]) / answered)  # 38.7 s
    assert week["max_wait_s"] == max(waits["CONNECT"] + waits["ABANDON"])  # 279 s, answered
    assert doc["queues"]["IT"]["live"]["waiting"] == len(open_waits)
    assert doc["as_of"] == as_of

    # Misses per agent "today" (2018-12-04 local): RINGNOANSWER rows of that day, by agent
    # (Agent/1126 -> 1126); answers likewise from CONNECT rows.
    def today(row: dict[str, str]) -> bool:
        local = datetime.fromtimestamp(int(row["date_time"]), UTC) + LOCAL
        return local.date().isoformat() == "2018-12-04"

    misses = Counter(
        r["type"].split("/")[1] for r in rows if r["event"] == "RINGNOANSWER" and today(r)
    )
    answers = Counter(r["type"].split("/")[1] for r in rows if r["event"] == "CONNECT" and today(r))
    assert sum(misses.values()) > 0
    for agent, n in misses.items():
        assert doc["agents"][agent]["missed_today"] == n, agent
    for agent, n in answers.items():
        assert doc["agents"][agent]["answered_today"] == n, agent
    # Nothing in the export is unreadable; CONFIGRELOAD rows carry nothing and are skipped.
    assert doc["counters"]["rejected"] == 0
    assert result.summary.feed is not None
    assert result.summary.feed.skipped == {"CONFIGRELOAD": 11}


@pytest.mark.skipif(not PBXWARE.exists(), reason="real data folder absent")
def test_pbxware_talk_time_is_the_aht() -> None:
    """A queue_log has no after-call work: a call's handle time is its talk time, from its
    CONNECT row to the row that ended it (PBXware's ttime)."""
    rows = _rows()
    answered: dict[str, int] = {}
    talks = []
    for row in rows:
        if row["event"] == "CONNECT":
            answered[row["callid"]] = int(row["date_time"])
        elif (
            row["event"] in ("COMPLETECALLER", "COMPLETEAGENT", "ATTENDEDTRANSFER", "BLINDTRANSFER")
            and row["callid"] in answered
        ):
            talks.append(int(row["date_time"]) - answered.pop(row["callid"]))
    cfg = parse_config({"windows": {"rolling": ["7d"]}})
    week = replay_document([PBXWARE], cfg, fmt="queue_log_csv")["queues"]["IT"]["windows"]["7d"]
    assert week["handled"] == len(talks) == 91  # two calls are still talking at the end
    assert week["aht_s"] == pytest.approx(sum(talks) / len(talks))


@pytest.mark.skipif(not CONNECT.exists(), reason="real data folder absent")
def test_connect_example_maps_with_after_call_work_inferred() -> None:
    """AWS's ACW example: the contact ENDED at 18:55:27.027 is after-call work (wrap_up)
    until the contacts are empty at 18:55:32.032: 5.005 s, which a 2 s wrap-up limit shows."""
    cfg = parse_config({"agents": {"wrap_up_max": "2s"}})
    doc = replay_document([CONNECT], cfg, fmt="connect")
    ended = datetime(2018, 10, 25, 18, 55, 27, 27000, UTC).timestamp()
    cleared = datetime(2018, 10, 25, 18, 55, 32, 32000, UTC).timestamp()
    agent = doc["agents"]["agent-ARN"]
    assert (agent["state"], agent["state_since"]) == ("available", cleared)
    [violation] = doc["violations"]
    assert violation["kind"] == "wrap_up_exceeded"
    assert violation["started_at"] == pytest.approx(ended + 2)
    assert violation["ended_at"] == pytest.approx(cleared)
    assert violation["value"] == pytest.approx(5.005)

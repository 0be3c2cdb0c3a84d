"""The same floor as canonical events and as an Asterisk log gives the same queue numbers.

A simulated floor is written as Asterisk would log its calls (queue_log, and the two
database export layouts); replaying the log through the mapper gives every queue's
offered, answered, abandoned, dequeued, service level, ASA and max wait of the canonical
events. Because a bug shared by the writer and the parser could pass that, a short
queue_log written by hand, with its numbers worked out by hand, is checked too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest
from qlwriter import pbxware_csv, queue_log, realtime_csv

from callfloor.config import Config, parse_config
from callfloor.events import to_builtins
from callfloor.replay import replay_document
from callfloor.simulator import FloorSimulation, build_spec

START = 1_795_420_800.0  # 2026-11-23T08:00:00Z
COMPARED = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "dequeued",
    "sl_offered",
    "answered_in_sl",
    "abandoned_in_sl",
    "service_level",
    "abandon_rate",
    "asa_s",
    "max_wait_s",
)


@pytest.fixture(scope="module")
def floor() -> tuple[list[dict[str, Any]], Config]:
    """Three hours of a simulated floor (whole-second times, as Asterisk logs) and its config."""
    sim = FloorSimulation(build_spec(agents=30, queues=5, sites=2, seed=11))
    events = []
    for event in sim.events(START, 3 * 3600):
        d = to_builtins(event)
        d["ts"] = float(math.floor(d["ts"]))
        events.append(d)
    import tomllib

    return events, parse_config(tomllib.loads(sim.config_toml()))


def queue_numbers(doc: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, queue in doc["queues"].items():
        out[name] = {
            "site": queue["site"],
            "windows": {w: {k: v[k] for k in COMPARED} for w, v in queue["windows"].items()},
            "waiting": queue["live"]["waiting"],
            "longest_wait_s": queue["live"]["longest_wait_s"],
        }
    return out


def test_the_simulated_floor_has_what_a_comparison_needs(
    floor: tuple[list[dict[str, Any]], Config],
) -> None:
    """The floor answers, abandons, dequeues, requeues and misses, in several sites."""
    events, _ = floor
    kinds = {e["type"] for e in events}
    assert {
        "call_queued",
        "call_answered",
        "call_abandoned",
        "call_dequeued",
        "call_missed",
        "call_ended",
    } <= kinds
    assert len({e["site"] for e in events}) == 2


@pytest.mark.parametrize("form", ["queue_log", "realtime_csv", "pbxware_csv"])
def test_a_floor_written_by_asterisk_gives_the_same_queue_numbers(
    floor: tuple[list[dict[str, Any]], Config], tmp_path: Path, form: str
) -> None:
    """Every queue's counts, rates, waits and live waiting are those of the canonical
    events, for the plain queue_log and both database exports."""
    events, cfg = floor
    canonical = tmp_path / "events.ndjson"
    canonical.write_text("".join(json.dumps(e) + "\n" for e in events))
    log = tmp_path / form
    if form == "queue_log":
        log.write_text(queue_log(events))
        fmt, options = "queue_log", {}
    elif form == "realtime_csv":
        log.write_text(realtime_csv(events, "America/Mexico_City"))
        fmt, options = "queue_log_csv", {"timezone": "America/Mexico_City"}
    else:
        log.write_text(pbxware_csv(events))
        fmt, options = "queue_log_csv", {}
    from callfloor.feeds import FeedOptions

    at = START + 3 * 3600
    want = queue_numbers(replay_document([canonical], cfg, at=at))
    got = queue_numbers(
        replay_document([log], cfg, at=at, fmt=fmt, options=FeedOptions.from_config(cfg, **options))
    )
    assert got == want
    assert sum(q["windows"]["today"]["offered"] for q in want.values()) > 100


# A short queue_log written by hand (queue "help", SL threshold 20 s, short abandons 5 s):
HAND = """\
1795424400|NONE|help|SIP/201|ADDMEMBER|
1795424400|NONE|help|SIP/202|ADDMEMBER|
1795424410|a.1|help|NONE|ENTERQUEUE||5550100|1
1795424418|a.1|help|SIP/201|CONNECT|8|a.2|2
1795424420|b.1|help|NONE|ENTERQUEUE||5550101|1
1795424435|b.1|help|SIP/202|RINGNOANSWER|15000
1795424445|b.1|help|SIP/202|CONNECT|25|b.2|3
1795424450|c.1|help|NONE|ENTERQUEUE||5550102|2
1795424453|c.1|help|NONE|ABANDON|2|2|3
1795424460|d.1|help|NONE|ENTERQUEUE||5550103|1
1795424472|d.1|help|NONE|ABANDON|1|1|12
1795424478|a.1|help|SIP/201|COMPLETECALLER|8|60|1
1795424480|e.1|help|NONE|ENTERQUEUE||5550104|1
1795424520|e.1|help|NONE|EXITWITHTIMEOUT|1|1|40
1795424530|f.1|help|NONE|ENTERQUEUE||5550105|1
1795424534|f.1|help|SIP/201|CONNECT|4|f.2|1
1795424545|b.1|help|SIP/202|COMPLETEAGENT|25|100|1
1795424560|g.1|help|NONE|ENTERQUEUE||5550106|1
1795424594|f.1|help|SIP/201|BLINDTRANSFER|300|default|4|60|1
1795424600|NONE|NONE|NONE|CONFIGRELOAD|
"""


def test_a_hand_written_queue_log_gives_the_numbers_worked_out_by_hand(tmp_path: Path) -> None:
    """Seven calls whose numbers are counted by hand, at the last event (09:03:14: the
    CONFIGRELOAD after it gives no event, so it does not move the document time)."""
    path = tmp_path / "queue_log"
    path.write_text(HAND)
    cfg = parse_config({"queues": {"help": {"sl_threshold_s": 20, "short_abandon_s": 5}}})
    doc = replay_document([path], cfg, fmt="queue_log")
    w = doc["queues"]["help"]["windows"]["15m"]
    # a: waited 8 s, answered (met).  b: waited 25 s, answered (missed SL at +20 s).
    # c: left after 3 s: a short abandon.  d: left after 12 s: abandoned within SL (5 < 12 <= 20).
    # e: timed out after 40 s: dequeued, missed SL.  f: waited 4 s, answered (met).
    # g: waiting since 09:02:40, 34 s at 09:03:14: missed SL (at 09:03:00), still waiting.
    assert (w["offered"], w["answered"], w["abandoned"], w["short_abandoned"]) == (7, 3, 1, 1)
    assert w["dequeued"] == 1
    # SL events: a met, b missed, d abandoned in SL, e missed, f met, g missed: 6 (c has none).
    assert (w["sl_offered"], w["answered_in_sl"], w["abandoned_in_sl"]) == (6, 2, 1)
    assert w["service_level"] == pytest.approx(2 / 6)
    assert w["abandon_rate"] == pytest.approx(1 / 4)  # abandoned / (answered + abandoned)
    assert w["asa_s"] == pytest.approx((8 + 25 + 4) / 3)
    assert w["max_wait_s"] == 25  # answered or abandoned: b's 25 s
    # Handled: a (60 s), b (100 s), f (60 s, ended by its transfer): AHT is talk time.
    assert (w["handled"], w["aht_s"]) == (3, pytest.approx(220 / 3))
    live = doc["queues"]["help"]["live"]
    assert doc["as_of"] == 1795424594
    assert (live["waiting"], live["longest_wait_s"]) == (1, 34)
    assert live["agents"]["available"] == 2
    assert (doc["agents"]["202"]["missed_today"], doc["agents"]["201"]["answered_today"]) == (1, 2)
    assert msgspec.json.encode(doc)  # the document is plain JSON

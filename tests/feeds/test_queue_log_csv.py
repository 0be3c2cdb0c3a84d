"""queue_log database exports: Asterisk realtime (FreePBX, Issabel) and PBXware layouts."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest
from feedutil import feed_text, kinds, plain

from callfloor.feeds.base import FeedFormatError, FeedOptions
from callfloor.feeds.queue_log_csv import QueueLogCsvMapper
from callfloor.feeds.state import AsteriskState

REALTIME = "time,callid,queuename,agent,event,data1,data2,data3,data4,data5"
PBXWARE = (
    "uid,date_time,callid,queue_name,type,event,param1,param2,param3,entpos,expos,htime,ttime,time"
)
NY = ZoneInfo("America/New_York")


def ny(text: str, fold: int = 0) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=NY, fold=fold).timestamp()


def csv(*rows: str, header: str = REALTIME, zone: str = "America/New_York", **kw: object):
    mapper = QueueLogCsvMapper(FeedOptions(timezone=zone, **kw))  # type: ignore[arg-type]
    return feed_text(mapper, "".join(r + "\n" for r in (header, *rows)))


def test_local_times_are_read_in_the_source_time_zone() -> None:
    """FreePBX and Issabel store local text without an offset: it is read in the source's
    time zone (fractions too)."""
    result = csv(
        "2026-11-23 09:00:00,c1,sales,NONE,ENTERQUEUE,,5551234567,1,,",
        "2026-11-23 09:00:07.250000,c1,sales,SIP/100,CONNECT,7,c1.2,3,,",
    )
    assert [(type(e).__name__, e.ts) for e in result.events[:2]] == [
        ("CallQueued", ny("2026-11-23 09:00:00")),
        ("CallAnswered", ny("2026-11-23 09:00:07.25")),
    ]


def test_the_repeated_hour_of_a_dst_change_is_read_in_order() -> None:
    """When clocks go back, 01:30 comes twice: the first time through, then (once the log
    went back) the second, so times keep increasing."""
    result = csv(
        "2026-11-01 00:59:00,c1,sales,NONE,ENTERQUEUE,,555,1,,",
        "2026-11-01 01:30:00,c2,sales,NONE,ENTERQUEUE,,555,1,,",
        "2026-11-01 01:10:00,c3,sales,NONE,ENTERQUEUE,,555,1,,",
        "2026-11-01 01:40:00,c4,sales,NONE,ENTERQUEUE,,555,1,,",
        "2026-11-01 02:10:00,c5,sales,NONE,ENTERQUEUE,,555,1,,",
    )
    assert [e.ts for e in result.events] == [
        ny("2026-11-01 00:59:00"),
        ny("2026-11-01 01:30:00"),
        ny("2026-11-01 01:10:00", fold=1),
        ny("2026-11-01 01:40:00", fold=1),
        ny("2026-11-01 02:10:00"),
    ]
    assert [e.ts for e in result.events] == sorted(e.ts for e in result.events)


def test_epochs_and_times_with_offsets_are_taken_as_they_are() -> None:
    """A time column holding epochs, or text with an offset, needs no time zone."""
    result = csv(
        "1795424400,c1,sales,NONE,ENTERQUEUE,,,,,",
        "2026-11-23T09:00:05+00:00,c1,sales,NONE,ABANDON,1,1,5,,",
    )
    assert [e.ts for e in result.events] == [1795424400.0, 1795424405.0]


@pytest.mark.parametrize(
    ("header", "row"),
    [
        (
            "time\tcallid\tqueuename\tagent\tevent\tdata1\tdata2\tdata3\tdata4\tdata5",
            "2026-11-23 09:00:00\tc1\tsales\tNULL\tENTERQUEUE\t\\N\t5551234567\t1\tNULL\tNULL",
        ),
        (
            "id;time;callid;queuename;agent;event;data",
            "7;2026-11-23 09:00:00;c1;sales;NONE;ENTERQUEUE;|5551234567|1",
        ),
        (
            '"time","callid","queuename","agent","event","data1","data2","data3","data4","data5"',
            '"2026-11-23 09:00:00","c1","sales","NONE","ENTERQUEUE",'
            '"","Smith, Ada <555>","1","",""',
        ),
    ],
    ids=["mysql-tab-nulls", "semicolon-joined-data", "quoted"],
)
def test_export_dialects(header: str, row: str) -> None:
    """Tab-separated (mysql -B, NULL and \\N), ';' with one joined data column, and quoted
    CSV all read the same."""
    result = csv(row, header=header)
    assert result.rejected == []
    assert [plain(e) for e in result.events] == [
        {
            "type": "call_queued",
            "call_id": "c1",
            "queue": "sales",
            "channel": "voice",
            "ts": ny("2026-11-23 09:00:00"),
            "site": "default",
        }
    ]


def test_pbxware_columns() -> None:
    """PBXware: epoch in date_time, agent in type; its rows map like queue_log lines."""
    result = csv(
        "5,1543598990,1543598985.25,IT,Local/1127@callback-agent,"
        "ADDMEMBER,,,,0,0,0,0,2018-11-30 12:29:50",
        "13,1543602677,1543602660.197,IT,NONE,ENTERQUEUE,5550000001,,,1,0,0,0,2018-11-30 13:31:17",
        "14,1543602687,1543602660.197,IT,Agent/1127,RINGNOANSWER,"
        "5550000001,,,1,1,10000,0,2018-11-30 13:31:28",
        "19,1543602753,1543602660.197,IT,Agent/1127,CONNECT,,1543602746.232,"
        "6,0,0,76,0,2018-11-30 13:32:34",
        "20,1543603600,1543602660.197,IT,Agent/1127,COMPLETECALLER,"
        "5550000001,,,1,0,76,847,2018-11-30 13:46:41",
        header=PBXWARE,
    )
    assert kinds(result) == [
        "agent_state:available",
        "call_queued",
        "call_missed",
        "call_answered",
        "agent_state:on_call",
        "call_ended",
        "agent_state:available",
    ]
    assert result.events[3].ts - result.events[1].ts == 76  # the wait, as htime says
    assert {e.agent for e in result.events if hasattr(e, "agent")} == {"1127"}


def test_pbxware_outbound_calls_keep_the_agent_busy() -> None:
    """OUTDIAL makes the agent on_call until the call's end verb (PBXware writes OUTANSWER
    when the outbound call ends: its date_time is OUTDIAL's plus htime plus ttime)."""
    result = csv(
        "5,1543598990,1.1,IT,Local/1127@callback-agent,ADDMEMBER,,,,0,0,0,0,x",
        "11,1543602023,1543602022.182,NONE,Agent/1127,OUTDIAL,3318,,,0,0,0,0,x",
        "12,1543602424,1543602022.182,NONE,Agent/1127,OUTANSWER,3318,COMPLETEAGENT,,0,0,2,398,x",
        header=PBXWARE,
    )
    assert [(e.state, e.ts) for e in result.events] == [
        ("available", 1543598990.0),
        ("on_call", 1543602023.0),
        ("available", 1543602424.0),
    ]


def test_pbxware_caller_numbers_never_reach_a_rejection() -> None:
    """PBXware's param1 (the caller id, or the dialled number) is redacted in rejections."""
    result = csv(
        "14,1543602687,1543602660.197,IT,Agent/1127,BEAM,5550000001,5550000002,,1,1,10000,0,x",
        header=PBXWARE,
    )
    assert [r.raw for r in result.rejected] == [
        "14,1543602687,1543602660.197,IT,Agent/1127,BEAM,[redacted],[redacted],,1,1,10000,0,x"
    ]


def test_realtime_caller_ids_are_redacted() -> None:
    """ENTERQUEUE's data2 (the caller id) is redacted in a rejection."""
    result = csv("yesterday,c1,sales,NONE,ENTERQUEUE,,Ada <5551234567>,1,,")
    assert [(r.reason, r.raw) for r in result.rejected] == [
        ("invalid_ts", "yesterday,c1,sales,NONE,ENTERQUEUE,,[redacted],1,,")
    ]


def test_a_row_with_the_wrong_number_of_columns_is_rejected() -> None:
    """A row that does not have the header's columns is malformed; the others map."""
    result = csv(
        "2026-11-23 09:00:00,c1,sales", "2026-11-23 09:00:01,c2,sales,NONE,ENTERQUEUE,,,,,"
    )
    assert [(r.index, r.reason) for r in result.rejected] == [(1, "malformed_line")]
    assert kinds(result) == ["call_queued"]


def test_an_unknown_header_stops_the_input() -> None:
    """A file whose first line names neither layout cannot be read at all."""
    with pytest.raises(FeedFormatError, match="expected the columns time, callid"):
        csv("1,2,3", header="a,b,c")


def test_the_header_is_part_of_the_state() -> None:
    """A mapper restored from a snapshot knows the header and goes on with the rows."""
    mapper = QueueLogCsvMapper(FeedOptions(timezone="UTC"))
    feed_text(mapper, PBXWARE + "\n")
    blob = msgspec.msgpack.encode(mapper.snapshot())
    again = QueueLogCsvMapper(FeedOptions(timezone="UTC"))
    again.restore(msgspec.msgpack.decode(blob, type=AsteriskState))
    result = feed_text(again, "13,1543602677,1.1,IT,NONE,ENTERQUEUE,555,,,1,0,0,0,x\n")
    assert kinds(result) == ["call_queued"]

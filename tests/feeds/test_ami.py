"""AMI: the wire parser, and each mapped manager event."""

from __future__ import annotations

from typing import Any

import pytest
from feedutil import T0, kinds, plain

from callfloor.feeds.ami import MAPPED_EVENTS, AmiMapper, AmiParser, AmiProtocolError
from callfloor.feeds.base import FeedOptions, MapResult
from callfloor.feeds.stream import map_chunks

BANNER = b"Asterisk Call Manager/5.0.1\r\n"


def wire(*messages: dict[str, Any]) -> bytes:
    return b"".join(
        b"".join(f"{k}: {v}\r\n".encode() for k, v in m.items()) + b"\r\n" for m in messages
    )


def ev(name: str, ts: float, **fields: Any) -> dict[str, str]:
    return {"Event": name, "Timestamp": f"{ts:.6f}", **{k: str(v) for k, v in fields.items()}}


def ami(*messages: dict[str, str], mapper: AmiMapper | None = None) -> MapResult:
    m = mapper or AmiMapper()
    return m.feed(list(messages), list(range(len(messages))))


# ---- the wire ------------------------------------------------------------------------------


def test_the_parser_reads_messages_however_the_bytes_arrive() -> None:
    """The banner is kept apart; messages end at a blank line, whatever the read sizes."""
    data = BANNER + wire(
        {"Response": "Success", "Message": "Authentication accepted"},
        ev("QueueCallerJoin", T0, Queue="sales", Uniqueid="1.1"),
    )
    for size in (1, 7, len(data)):
        parser = AmiParser()
        messages = []
        for i in range(0, len(data), size):
            messages += parser.feed(data[i : i + size])
        assert parser.banner == "Asterisk Call Manager/5.0.1"
        assert messages == [
            {"Response": "Success", "Message": "Authentication accepted"},
            {
                "Event": "QueueCallerJoin",
                "Timestamp": f"{T0:.6f}",
                "Queue": "sales",
                "Uniqueid": "1.1",
            },
        ]


def test_bare_newlines_repeated_keys_and_command_output() -> None:
    """\\n line ends are accepted; a repeated key keeps both values; lines without ': '
    (old Command output) go to Output; a key with an empty value is kept."""
    data = (
        b"Event: VarSet\nChanVariable: a=1\nChanVariable: b=2\nValue:\n\n"
        b"Response: Follows\nPrivilege: Command\nName   Calls\n--END COMMAND--\n\n"
    )
    assert AmiParser().feed(data) == [
        {"Event": "VarSet", "ChanVariable": "a=1\nb=2", "Value": ""},
        {"Response": "Follows", "Privilege": "Command", "Output": "Name   Calls\n--END COMMAND--"},
    ]


def test_where_each_message_starts_is_known() -> None:
    """Each message comes with the byte offset and line where it began."""
    parser = AmiParser()
    parser.feed(BANNER + b"Event: A\r\n\r\nEvent: B\r\nX: 1\r\n\r\n")
    assert parser.starts == [(len(BANNER), 2), (len(BANNER) + 12, 4)]


def test_a_line_beyond_the_limit_is_a_protocol_error() -> None:
    """A peer sending a line of megabytes is not AMI: the parser refuses to buffer it."""
    with pytest.raises(AmiProtocolError, match="longer than"):
        AmiParser().feed(b"Event: " + b"x" * 70_000)


def test_a_message_the_input_ends_in_is_a_truncated_rejection() -> None:
    """An AMI capture ending inside a message rejects that message as truncated."""
    data = wire(ev("QueueCallerJoin", T0, Queue="sales", Uniqueid="1.1")) + b"Event: Agent"
    batches = list(map_chunks(AmiMapper(), [data]))
    assert [r.reason for b in batches for r in b.result.rejected] == ["truncated_line"]
    assert [type(e).__name__ for b in batches for e in b.result.events] == ["CallQueued"]


# ---- the mapping ---------------------------------------------------------------------------

ADDED = ev(
    "QueueMemberAdded",
    T0,
    Queue="sales",
    MemberName="SIP/100",
    Interface="SIP/100",
    Status=1,
    Paused=0,
    Membership="dynamic",
)
JOIN = ev(
    "QueueCallerJoin",
    T0 + 1,
    Queue="sales",
    Uniqueid="c1",
    CallerIDNum="5551234567",
    Position=1,
    Count=1,
)
LEAVE = ev("QueueCallerLeave", T0 + 5, Queue="sales", Uniqueid="c1", Position=1, Count=0)
CONNECT = ev(
    "AgentConnect",
    T0 + 5.2,
    Queue="sales",
    Uniqueid="c1",
    MemberName="SIP/100",
    Interface="SIP/100",
    HoldTime=4,
    RingTime=2,
)


def last_events(*messages: dict[str, str]) -> list[dict[str, Any]]:
    result = ami(*messages)
    return [
        plain(e)
        for e, o in zip(result.events, result.origins, strict=True)
        if o == len(messages) - 1
    ]


CASES: list[tuple[str, list[dict[str, str]], dict[str, str], list[str]]] = [
    ("QueueCallerJoin", [], JOIN, ["call_queued"]),
    ("QueueCallerJoin", [], {**JOIN, "Event": "Join"}, ["call_queued"]),  # 1.8 / 11
    # A leave alone waits for what explains it (see the tests below).
    ("QueueCallerLeave", [JOIN], LEAVE, []),
    ("QueueCallerLeave", [JOIN], {**LEAVE, "Event": "Leave"}, []),  # 1.8 / 11
    (
        "QueueCallerAbandon",
        [JOIN],
        ev(
            "QueueCallerAbandon",
            T0 + 9,
            Queue="sales",
            Uniqueid="c1",
            Position=1,
            OriginalPosition=1,
            HoldTime=8,
        ),
        ["call_abandoned"],
    ),
    (
        "AgentCalled",
        [ADDED, JOIN],
        ev(
            "AgentCalled",
            T0 + 2,
            Queue="sales",
            Uniqueid="c1",
            MemberName="SIP/100",
            Interface="SIP/100",
        ),
        ["call_routed"],
    ),
    ("AgentConnect", [ADDED, JOIN, LEAVE], CONNECT, ["call_answered", "agent_state:on_call"]),
    (
        "AgentComplete",
        [ADDED, JOIN, LEAVE, CONNECT],
        ev(
            "AgentComplete",
            T0 + 60,
            Queue="sales",
            Uniqueid="c1",
            MemberName="SIP/100",
            HoldTime=4,
            TalkTime=55,
            Reason="caller",
        ),
        ["call_ended", "agent_state:available"],
    ),
    (
        "AgentRingNoAnswer",
        [ADDED, JOIN],
        ev(
            "AgentRingNoAnswer",
            T0 + 17,
            Queue="sales",
            Uniqueid="c1",
            MemberName="SIP/100",
            RingTime=15000,
        ),
        ["call_missed"],
    ),
    (
        "AgentDump",
        [ADDED, JOIN],
        ev("AgentDump", T0 + 9, Queue="sales", Uniqueid="c1", MemberName="SIP/100"),
        ["call_missed"],
    ),
    (
        "BlindTransfer",
        [ADDED, JOIN, LEAVE, CONNECT],
        ev(
            "BlindTransfer",
            T0 + 30,
            Result="Success",
            TransfererUniqueid="a1.1",
            TransfereeUniqueid="c1",
            Extension="200",
            Context="default",
            IsExternal="no",
        ),
        ["call_ended", "agent_state:available"],
    ),
    (
        "AttendedTransfer",
        [ADDED, JOIN, LEAVE, CONNECT],
        ev(
            "AttendedTransfer",
            T0 + 30,
            Result="Success",
            OrigTransfererUniqueid="a1.1",
            SecondTransfererUniqueid="a1.2",
            TransfereeUniqueid="c1",
            DestType="Bridge",
        ),
        ["call_ended", "agent_state:available"],
    ),
    ("QueueMemberAdded", [], ADDED, ["agent_state:available"]),
    (
        "QueueMemberRemoved",
        [ADDED],
        ev("QueueMemberRemoved", T0 + 9, Queue="sales", MemberName="SIP/100", Interface="SIP/100"),
        ["agent_state:logged_out"],
    ),
    (
        "QueueMemberPause",
        [ADDED],
        ev(
            "QueueMemberPause",
            T0 + 9,
            Queue="sales",
            MemberName="SIP/100",
            Paused=1,
            PausedReason="lunch",
        ),
        ["agent_state:not_ready"],
    ),
    (
        "QueueMemberPause",
        [ADDED],
        ev(
            "QueueMemberPaused",
            T0 + 9,
            Queue="sales",  # 1.8 / 11
            MemberName="SIP/100",
            Paused=1,
            Reason="lunch",
        ),
        ["agent_state:not_ready"],
    ),
    (
        "QueueMemberStatus",
        [ADDED],
        ev("QueueMemberStatus", T0 + 9, Queue="sales", MemberName="SIP/100", Status=6, Paused=0),
        ["agent_state:ringing"],
    ),
]


@pytest.mark.parametrize(
    ("name", "before", "message", "expected"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_each_mapped_event(
    name: str, before: list[dict[str, str]], message: dict[str, str], expected: list[str]
) -> None:
    """Each mapped manager event gives its canonical events."""
    result = ami(*before, message)
    last = MapResult(
        events=[e for e, o in zip(result.events, result.origins, strict=True) if o == len(before)]
    )
    assert kinds(last) == expected
    assert result.rejected == []


def test_every_mapped_event_is_tested() -> None:
    """The cases above cover every event the issue lists."""
    assert {c[0] for c in CASES} == set(MAPPED_EVENTS)


def test_a_leave_then_a_connect_is_an_answer_not_a_dequeue() -> None:
    """Asterisk takes the caller out of the queue (QueueCallerLeave) before AgentConnect:
    the leave waits, and the answer explains it."""
    result = ami(ADDED, JOIN, LEAVE, CONNECT, ev("Newexten", T0 + 100))
    assert kinds(result) == [
        "agent_state:available",
        "call_queued",
        "call_answered",
        "agent_state:on_call",
    ]
    assert result.skipped == {"Newexten": 1}


def test_a_leave_nothing_explains_is_a_dequeue_at_its_own_time() -> None:
    """A timeout, a key or an empty queue sends only QueueCallerLeave: once the grace has
    passed (or the input ends) it is a call_dequeued at the leave's time."""
    mapper = AmiMapper()
    first = ami(JOIN, LEAVE, ev("Newexten", T0 + 10), mapper=mapper)
    assert kinds(first) == ["call_queued"]
    later = ami(
        ev("QueueMemberStatus", T0 + 40, Queue="sales", MemberName="SIP/9", Status=1), mapper=mapper
    )
    assert (plain(later.events[0])["type"], later.events[0].ts) == ("call_dequeued", T0 + 5)
    assert later.events[0].id is not None and later.events[0].id.startswith("ami-")
    ended = AmiMapper()
    ami(JOIN, LEAVE, mapper=ended)
    assert kinds(ended.finish()) == ["call_dequeued"]


def test_a_leave_after_an_abandon_adds_nothing() -> None:
    """QueueCallerAbandon comes before the leave: one abandon, no dequeue."""
    mapper = AmiMapper()
    result = ami(
        JOIN, ev("QueueCallerAbandon", T0 + 4, Queue="sales", Uniqueid="c1"), LEAVE, mapper=mapper
    )
    assert kinds(result) + kinds(mapper.finish()) == ["call_queued", "call_abandoned"]


def test_a_transfer_and_its_agent_complete_end_the_call_once() -> None:
    """A transfer of a queue call ends it; the AgentComplete (reason transfer) that follows
    adds nothing. A transfer of any other call is not the floor's business."""
    result = ami(
        ADDED,
        JOIN,
        LEAVE,
        CONNECT,
        ev("BlindTransfer", T0 + 30, Result="Success", TransfereeUniqueid="c1"),
        ev(
            "AgentComplete",
            T0 + 30,
            Queue="sales",
            Uniqueid="c1",
            MemberName="SIP/100",
            Reason="transfer",
        ),
        ev("BlindTransfer", T0 + 31, Result="Success", TransfereeUniqueid="x9"),
        ev("AttendedTransfer", T0 + 32, Result="Fail", TransfereeUniqueid="c1"),
    )
    assert kinds(result).count("call_ended") == 1


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (1, "available"),
        (2, "on_call"),
        (3, "on_call"),
        (8, "on_call"),
        (6, "ringing"),
        (7, "on_call"),
        (5, "logged_out"),
        (4, "logged_out"),
    ],
)
def test_device_states_of_queue_member_status(status: int, state: str) -> None:
    """The member's device state decides busy, ringing and unreachable."""
    result = ami(
        ev("QueueMemberStatus", T0, Queue="sales", MemberName="SIP/100", Status=status, Paused=0)
    )
    assert [e.state for e in result.events] == ([state] if state != "logged_out" else [])


def test_a_paused_member_with_an_idle_device_is_not_ready() -> None:
    """QueueMemberStatus carries Paused and PausedReason too."""
    result = ami(
        ev(
            "QueueMemberStatus",
            T0,
            Queue="sales",
            MemberName="SIP/100",
            Status=1,
            Paused=1,
            PausedReason="break",
        )
    )
    assert [(e.state, e.reason) for e in result.events] == [("not_ready", "break")]


def test_events_without_a_timestamp_or_a_field_are_rejected() -> None:
    """A mapped event needs a Timestamp (timestampevents = yes) and the fields it maps;
    unmapped events (Newchannel, ...) and responses are skipped whatever they hold."""
    result = ami(
        {
            "Event": "QueueCallerJoin",
            "Queue": "sales",
            "Uniqueid": "c1",
            "CallerIDNum": "5551234567",
        },
        ev("QueueCallerJoin", T0, Queue="sales", CallerIDNum="5551234567"),
        ev("AgentConnect", T0, Queue="sales", Uniqueid="c1"),
        {"Event": "Newchannel", "Channel": "SIP/100-1"},
        {"Response": "Success"},
    )
    assert [(r.reason, r.message.split(":")[0]) for r in result.rejected] == [
        ("invalid_ts", "`Timestamp`"),
        ("missing_field", "`Uniqueid`"),
        ("missing_field", "`MemberName`"),
    ]
    assert "5551234567" not in "".join(r.raw for r in result.rejected)
    assert "CallerIDNum: [redacted]" in result.rejected[0].raw
    assert result.skipped == {"Newchannel": 1, "Response": 1}


def test_caller_numbers_stay_with_keep() -> None:
    """With [privacy] caller_ids = "keep" a rejected event is kept as received."""
    mapper = AmiMapper(FeedOptions(caller_ids="keep"))
    result = ami({"Event": "QueueCallerJoin", "CallerIDNum": "5551234567"}, mapper=mapper)
    assert "CallerIDNum: 5551234567" in result.rejected[0].raw

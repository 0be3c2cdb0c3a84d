"""The queue_log mapper: every verb Asterisk 1.4-22 writes, their field variants, bad lines."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import msgspec
import pytest
from feedutil import T0, feed_text, kinds, plain, qlog, shapes
from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.events import CallQueued
from callfloor.feeds.asterisk import SKIPPED, VERBS
from callfloor.feeds.base import FeedOptions, LineSplitter, event_id
from callfloor.feeds.queue_log import QueueLogMapper, parse_lines
from callfloor.feeds.state import AsteriskState
from callfloor.feeds.stream import map_chunks

ADD = f"{T0}|NONE|sales|SIP/100|ADDMEMBER|"
ENTER = f"{T0 + 1}|c1|sales|NONE|ENTERQUEUE||5551234567|1"
CONNECT = f"{T0 + 5}|c1|sales|SIP/100|CONNECT|4|c1.9|2"
T = T0 + 10

QUEUED = {"type": "call_queued", "call_id": "c1", "queue": "sales", "channel": "voice"}
ANSWERED = {"type": "call_answered", "call_id": "c1", "agent": "100", "queue": "sales"}
ENDED = {"type": "call_ended", "call_id": "c1", "agent": "100"}


def agent(state: str, queues: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "type": "agent_state",
        "agent": "100",
        "state": state,
        "queues": ["sales"] if queues is None else queues,
        **kw,
    }


def dequeued(reason: str) -> dict[str, Any]:
    return {"type": "call_dequeued", "call_id": "c1", "queue": "sales", "reason": reason}


def missed(reason: str) -> dict[str, Any]:
    return {
        "type": "call_missed",
        "call_id": "c1",
        "agent": "100",
        "queue": "sales",
        "reason": reason,
    }


# (verb, lines before, the line, the events it gives). Times and sites are added below.
CASES: list[tuple[str, list[str], str, list[dict[str, Any]]]] = [
    ("ENTERQUEUE", [], f"{T}|c1|sales|NONE|ENTERQUEUE||5551234567|1", [QUEUED]),  # 1.8+
    ("ENTERQUEUE", [], f"{T}|c1|sales|NONE|ENTERQUEUE||5551234567", [QUEUED]),  # 1.4
    ("ENTERQUEUE", [], f"{T}|c1|sales|NONE|ENTERQUEUE", [QUEUED]),  # forks without data
    (
        "CONNECT",
        [ADD, ENTER],
        f"{T}|c1|sales|SIP/100|CONNECT|9|c1.9|2",
        [ANSWERED, agent("on_call")],
    ),
    ("CONNECT", [ADD, ENTER], f"{T}|c1|sales|SIP/100|CONNECT|9|c1.9", [ANSWERED, agent("on_call")]),
    (
        "ABANDON",
        [ENTER],
        f"{T}|c1|sales|NONE|ABANDON|1|1|9",
        [{"type": "call_abandoned", "call_id": "c1", "queue": "sales"}],
    ),
    ("EXITWITHTIMEOUT", [ENTER], f"{T}|c1|sales|NONE|EXITWITHTIMEOUT|1|1|9", [dequeued("timeout")]),
    ("EXITWITHTIMEOUT", [ENTER], f"{T}|c1|sales|NONE|EXITWITHTIMEOUT|1", [dequeued("timeout")]),
    ("EXITWITHKEY", [ENTER], f"{T}|c1|sales|NONE|EXITWITHKEY|5|1|1|9", [dequeued("key")]),
    ("EXITWITHKEY", [ENTER], f"{T}|c1|sales|NONE|EXITWITHKEY|5|1", [dequeued("key")]),  # 1.4
    ("EXITEMPTY", [ENTER], f"{T}|c1|sales|NONE|EXITEMPTY|1|1|9", [dequeued("empty")]),
    ("WITHDRAW", [ENTER], f"{T}|c1|sales|NONE|WITHDRAW|1|1|9|info", [dequeued("other")]),
    (
        "COMPLETECALLER",
        [ADD, ENTER, CONNECT],
        f"{T}|c1|sales|SIP/100|COMPLETECALLER|4|5|1",
        [ENDED, agent("available")],
    ),
    (
        "COMPLETEAGENT",
        [ADD, ENTER, CONNECT],
        f"{T}|c1|sales|SIP/100|COMPLETEAGENT|4|5|1",
        [ENDED, agent("available")],
    ),
    (
        "TRANSFER",
        [ADD, ENTER, CONNECT],
        f"{T}|c1|sales|SIP/100|TRANSFER|200|default|4|5|1",
        [ENDED, agent("available")],
    ),
    (
        "TRANSFER",
        [ADD, ENTER, CONNECT],
        f"{T}|c1|sales|SIP/100|TRANSFER|200|default|4|5",
        [ENDED, agent("available")],
    ),  # 1.4: no origposition
    (
        "ATTENDEDTRANSFER",
        [ADD, ENTER, CONNECT],
        f"{T}|c1|sales|SIP/100|ATTENDEDTRANSFER|BRIDGE|b-17|4|5|1",
        [ENDED, agent("available")],
    ),
    (
        "ATTENDEDTRANSFER",
        [ADD, ENTER, CONNECT],
        f"{T}|c1|sales|SIP/100|ATTENDEDTRANSFER|APP|Dial|4|5|1",
        [ENDED, agent("available")],
    ),
    (
        "BLINDTRANSFER",
        [ADD, ENTER, CONNECT],
        f"{T}|c1|sales|SIP/100|BLINDTRANSFER|200|default|4|5|1",
        [ENDED, agent("available")],
    ),
    (
        "RINGNOANSWER",
        [ADD, ENTER],
        f"{T}|c1|sales|SIP/100|RINGNOANSWER|15000",
        [missed("no_answer")],
    ),
    ("AGENTDUMP", [ADD, ENTER], f"{T}|c1|sales|SIP/100|AGENTDUMP|", [missed("rejected")]),
    ("PAUSE", [ADD], f"{T}|NONE|sales|SIP/100|PAUSE|", [agent("not_ready")]),  # 1.4: no reason
    ("PAUSE", [ADD], f"{T}|NONE|sales|SIP/100|PAUSE|lunch", [agent("not_ready", reason="lunch")]),
    (
        "UNPAUSE",
        [ADD, f"{T0 + 1}|NONE|sales|SIP/100|PAUSE|lunch"],
        f"{T}|NONE|sales|SIP/100|UNPAUSE|",
        [agent("available")],
    ),
    ("PAUSEALL", [ADD], f"{T}|NONE|NONE|SIP/100|PAUSEALL|", [agent("not_ready")]),
    (
        "UNPAUSEALL",
        [ADD, f"{T0 + 1}|NONE|NONE|SIP/100|PAUSEALL|"],
        f"{T}|NONE|NONE|SIP/100|UNPAUSEALL|",
        [agent("available")],
    ),
    (
        "PAUSEREASON",
        [ADD],
        f"{T}|NONE|NONE|SIP/100|PAUSEREASON|break",
        [agent("not_ready", reason="break")],
    ),
    ("ADDMEMBER", [], f"{T}|NONE|sales|SIP/100|ADDMEMBER|", [agent("available")]),
    ("REMOVEMEMBER", [ADD], f"{T}|NONE|sales|SIP/100|REMOVEMEMBER|", [agent("logged_out", [])]),
    ("AGENTLOGIN", [], f"{T}|NONE|NONE|Agent/100|AGENTLOGIN|SIP/100", [agent("available", [])]),
    (
        "AGENTLOGOFF",
        [f"{T0}|NONE|NONE|Agent/100|AGENTLOGIN|SIP/100"],
        f"{T}|NONE|NONE|Agent/100|AGENTLOGOFF|SIP/100|3600",
        [agent("logged_out", [])],
    ),
    (
        "AGENTCALLBACKLOGIN",
        [],
        f"{T}|NONE|NONE|Agent/100|AGENTCALLBACKLOGIN|100@default",
        [agent("available", [])],
    ),
    (
        "AGENTCALLBACKLOGOFF",
        [f"{T0}|NONE|NONE|Agent/100|AGENTCALLBACKLOGIN|100@default"],
        f"{T}|NONE|NONE|Agent/100|AGENTCALLBACKLOGOFF|100@default|3600|Autologoff",
        [agent("logged_out", [])],
    ),
    ("QUEUESTART", [ADD, ENTER], f"{T}|NONE|NONE|NONE|QUEUESTART|", [dequeued("other")]),
    (
        "QUEUESTART",
        [ADD, ENTER, CONNECT],
        f"{T}|NONE|NONE|NONE|QUEUESTART|",
        [ENDED, agent("available")],
    ),
    ("OUTDIAL", [ADD], f"{T}|o1|NONE|Agent/100|OUTDIAL|5551234567", [agent("on_call")]),
]
for _verb in ("OUTANSWER", "OUTCANCEL", "OUTCHANUNAVAIL", "OUTCONGESTION", "OUTTRANSFER"):
    CASES.append(
        (
            _verb,
            [ADD, f"{T0 + 1}|o1|NONE|Agent/100|OUTDIAL|5551234567"],
            f"{T}|o1|NONE|Agent/100|{_verb}|5551234567",
            [agent("available")],
        )
    )

SKIPPED_LINES = {
    "CONFIGRELOAD": f"{T}|NONE|NONE|NONE|CONFIGRELOAD|",
    "DID": f"{T}|c1|NONE|NONE|DID|5557654321",
    "INFO": f"{T}|c1|sales|NONE|INFO|WAIT|12",
    "SYSCOMPAT": f"{T}|c1|sales|SIP/100|SYSCOMPAT|",
    "FULL": f"{T}|c1|sales|NONE|FULL|",
    "JOINEMPTY": f"{T}|c1|sales|NONE|JOINEMPTY|",
    "JOINUNAVAIL": f"{T}|c1|sales|NONE|JOINUNAVAIL|",
    "RINGCANCELED": f"{T}|c1|sales|SIP/100|RINGCANCELED|1500",
    "PENALTY": f"{T}|NONE|sales|SIP/100|PENALTY|2",
    "RINGINUSE": f"{T}|NONE|sales|SIP/100|RINGINUSE|1",
}

# The verbs the issue lists (Asterisk 1.4-22) and PBXware's outbound ones.
ISSUE_VERBS = {
    "ENTERQUEUE",
    "CONNECT",
    "ABANDON",
    "EXITWITHTIMEOUT",
    "EXITWITHKEY",
    "EXITEMPTY",
    "COMPLETECALLER",
    "COMPLETEAGENT",
    "TRANSFER",
    "ATTENDEDTRANSFER",
    "BLINDTRANSFER",
    "RINGNOANSWER",
    "RINGCANCELED",
    "AGENTDUMP",
    "PAUSE",
    "UNPAUSE",
    "PAUSEALL",
    "UNPAUSEALL",
    "PAUSEREASON",
    "ADDMEMBER",
    "REMOVEMEMBER",
    "AGENTLOGIN",
    "AGENTLOGOFF",
    "AGENTCALLBACKLOGIN",
    "AGENTCALLBACKLOGOFF",
    "QUEUESTART",
    "CONFIGRELOAD",
    "DID",
    "INFO",
    "SYSCOMPAT",
    "FULL",
    "JOINEMPTY",
    "JOINUNAVAIL",
    "OUTDIAL",
    "OUTANSWER",
    "OUTCANCEL",
    "OUTCHANUNAVAIL",
    "OUTCONGESTION",
    "OUTTRANSFER",
}


def last_line_events(before: list[str], line: str) -> list[dict[str, Any]]:
    result = qlog(*before, line)
    return [
        plain(e)
        for e, origin in zip(result.events, result.origins, strict=True)
        if origin == len(before)
    ]


@pytest.mark.parametrize(
    ("verb", "before", "line", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_verb_maps_to_its_events(
    verb: str, before: list[str], line: str, expected: list[dict[str, Any]]
) -> None:
    """Each verb (in each field variant) gives the events SPEC §11 names, at its line's time."""
    want = [{**e, "ts": float(T), "site": "default"} for e in expected]
    assert last_line_events(before, line) == want


@pytest.mark.parametrize("verb", sorted(SKIPPED_LINES))
def test_verbs_that_carry_nothing_are_skipped_not_rejected(verb: str) -> None:
    """CONFIGRELOAD, DID, INFO, ... give no event and no rejection: they count as skipped."""
    result = qlog(ENTER, SKIPPED_LINES[verb])
    assert kinds(result) == ["call_queued"]
    assert result.rejected == []
    assert result.skipped == {verb: 1}


def test_every_verb_asterisk_writes_is_tested_and_known() -> None:
    """The verbs above cover every verb of the issue's list, and each is mapped or skipped."""
    tested = {c[0] for c in CASES} | set(SKIPPED_LINES)
    assert tested >= ISSUE_VERBS
    assert tested <= set(VERBS) | SKIPPED


# ---- bad lines -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason", "field"),
    [
        (f"{T}|c1|sales|NONE", "malformed_line", "5 |-separated fields"),
        ("garbage", "malformed_line", "got 1"),
        (f"{T}|c1|sales|NONE|TELEPORT|x", "unknown_verb", "TELEPORT"),
        ("abc|c1|sales|NONE|ENTERQUEUE||5551234567|1", "invalid_ts", "abc"),
        ("-5|c1|sales|NONE|ENTERQUEUE|", "invalid_ts", "-5"),
        ("nan|c1|sales|NONE|ENTERQUEUE|", "invalid_ts", "nan"),
        ("1e30|c1|sales|NONE|ENTERQUEUE|", "invalid_ts", "1e30"),
        ("|c1|sales|NONE|ENTERQUEUE|", "invalid_ts", "''"),
        (f"{T}|c1|sales|NONE|CONNECT|4|c1.9|2", "missing_field", "`agent`"),
        (f"{T}|c1|NONE|NONE|ENTERQUEUE||5551234567|1", "missing_field", "`queuename`"),
        (f"{T}|NONE|sales|SIP/100|COMPLETECALLER|4|5|1", "missing_field", "`callid`"),
        (f"{T}||sales|NONE|ABANDON|1|1|9", "missing_field", "`callid`"),
        (f"{T}|NONE|sales|NONE|ADDMEMBER|", "missing_field", "`agent`"),
        (f"{T}|NONE|NONE|SIP/100|REMOVEMEMBER|", "missing_field", "`queuename`"),
    ],
)
def test_a_bad_line_is_rejected_with_its_reason_and_the_rest_still_maps(
    line: str, reason: str, field: str
) -> None:
    """A line that cannot be mapped is rejected (reason, message naming the problem, the
    line); the good lines before and after it still give their events."""
    result = qlog(ENTER, line, f"{T + 5}|c1|sales|NONE|ABANDON|1|1|14")
    assert kinds(result) == ["call_queued", "call_abandoned"]
    assert [(r.index, r.reason) for r in result.rejected] == [(1, reason)]
    assert field in result.rejected[0].message
    assert result.rejected[0].position == len(ENTER) + 1


def test_a_truncated_last_line_is_rejected_not_mapped() -> None:
    """At the end of a file, a last line without its newline (still being written) is a
    truncated_line rejection: "CONNECT|7" may be "CONNECT|76" cut short."""
    mapper = QueueLogMapper()
    text = f"{ENTER}\n{T}|c1|sales|SIP/100|CONN".encode()
    batches = list(map_chunks(mapper, [text[:30], text[30:]]))
    events = [e for b in batches for e in b.result.events]
    rejected = [(r.reason, b.line_of(r.index)) for b in batches for r in b.result.rejected]
    assert [type(e).__name__ for e in events] == ["CallQueued"]
    assert rejected == [("truncated_line", 2)]


def test_rejected_lines_keep_no_caller_number() -> None:
    """Caller ids (ENTERQUEUE's, or a number in any data field) never reach a rejection's
    raw line unless [privacy] caller_ids = "keep"."""
    bad = [
        "xyz|c1|sales|NONE|ENTERQUEUE||Ada <5551234567>|1",
        f"{T}|c1|sales|NONE|NEWVERB|+15557654321",
        f"{T}|c1|NONE|NONE|ENTERQUEUE||5551234567|1",
        "5551234567|c1",
    ]
    redacted = [r.raw for r in qlog(*bad).rejected]
    assert redacted == [
        "xyz|c1|sales|NONE|ENTERQUEUE||[redacted]|1",
        f"{T}|c1|sales|NONE|NEWVERB|[redacted]",
        f"{T}|c1|NONE|NONE|ENTERQUEUE||[redacted]|1",
        "[redacted]|c1",
    ]
    kept = [r.raw for r in qlog(*bad, options=FeedOptions(caller_ids="keep")).rejected]
    assert kept == bad


def test_a_shifted_line_quotes_no_number_in_its_message_or_verb() -> None:
    """A line whose fields shifted (a caller id where the verb or the epoch belongs) gives a
    rejection whose message and verb hide the number too."""
    result = qlog(f"{T}|c1|sales|NONE|5551234567|ENTERQUEUE", "Ada <5551234567>|c1|q|NONE|ABANDON|")
    said = [(r.message, r.verb) for r in result.rejected]
    assert "5551234567" not in repr(said)
    assert said[0] == ("unknown queue_log verb '[redacted]'", "[redacted]")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=6))
def test_the_mapping_does_not_depend_on_how_lines_are_batched(cuts: list[int]) -> None:
    """A live source feeds whatever it read: lines fed in any batches give the events (ids
    included), rejections and skips of one batch."""
    text = "".join(
        line + "\n"
        for line in [
            *LOG,
            f"{T0 + 62}|NONE|NONE|NONE|CONFIGRELOAD|",
            f"{T0 + 63}|x|y|NONE|NOPE|",
            f"{T0 + 64}|c2|sales|NONE|ENTERQUEUE||555|1",
            f"{T0 + 70}|NONE|NONE|NONE|QUEUESTART|",
        ]
    )
    lines, offsets, _ = LineSplitter().push(text.encode())
    whole = QueueLogMapper().feed(lines, offsets)
    mapper = QueueLogMapper()
    events, skipped, rejected = [], 0, []
    bounds = [0, *sorted(min(c, len(lines)) for c in cuts), len(lines)]
    for a, b in pairwise(bounds):
        part = mapper.feed(lines[a:b], offsets[a:b])
        events += part.events
        skipped += sum(part.skipped.values())
        rejected += [(r.position, r.reason) for r in part.rejected]
    assert events == whole.events
    assert skipped == sum(whole.skipped.values())
    assert rejected == [(r.position, r.reason) for r in whole.rejected]


# ---- agents the log implies --------------------------------------------------------------


def agent_states(result: Any) -> list[tuple[str, str, str | None, list[str]]]:
    return [
        (e.agent, e.state, e.reason, e.queues)
        for e in result.events
        if type(e).__name__ == "AgentState"
    ]


def test_membership_is_per_queue_and_the_last_removal_logs_out() -> None:
    """ADDMEMBER adds a queue to the agent's list, REMOVEMEMBER takes it away; the agent is
    logged out once it serves no queue."""
    result = qlog(
        f"{T0}|NONE|sales|SIP/100|ADDMEMBER|",
        f"{T0 + 1}|NONE|support|SIP/100|ADDMEMBER|",
        f"{T0 + 2}|NONE|sales|SIP/100|REMOVEMEMBER|",
        f"{T0 + 3}|NONE|support|SIP/100|REMOVEMEMBER|",
    )
    assert agent_states(result) == [
        ("100", "available", None, ["sales"]),
        ("100", "available", None, ["sales", "support"]),
        ("100", "available", None, ["support"]),
        ("100", "logged_out", None, []),
    ]


def test_one_agent_however_its_channel_is_written() -> None:
    """PBXware logs ADDMEMBER as Local/1127@callback-agent and calls as Agent/1127: one
    agent, 1127; an alias map gives it another name; without stripping they stay apart."""
    lines = [
        f"{T0}|M|IT|Local/1127@callback-agent|ADDMEMBER|",
        f"{T0}|c1|NONE|Agent/1127|AGENTCALLBACKLOGIN|hint:1127@default",
        f"{T0 + 1}|c1|IT|NONE|ENTERQUEUE||5550000001|1",
        f"{T0 + 4}|c1|IT|Agent/1127|CONNECT|3|c1.2|3",
    ]
    assert {e.agent for e in qlog(*lines).events if hasattr(e, "agent")} == {"1127"}
    aliased = qlog(*lines, options=FeedOptions(aliases={"1127": "ada"}))
    assert {e.agent for e in aliased.events if hasattr(e, "agent")} == {"ada"}
    exact = qlog(*lines, options=FeedOptions(strip_technology=False))
    assert {e.agent for e in exact.events if hasattr(e, "agent")} == {
        "Local/1127@callback-agent",
        "Agent/1127",
    }


def test_a_pause_in_one_of_two_queues_leaves_the_agent_available() -> None:
    """Paused in one queue the agent still takes the other's calls; paused in both it is
    not ready, with the reason."""
    result = qlog(
        f"{T0}|NONE|sales|SIP/100|ADDMEMBER|",
        f"{T0}|NONE|support|SIP/100|ADDMEMBER|",
        f"{T0 + 1}|NONE|sales|SIP/100|PAUSE|lunch",
        f"{T0 + 2}|NONE|support|SIP/100|PAUSE|lunch",
        f"{T0 + 3}|NONE|sales|SIP/100|UNPAUSE|",
    )
    assert [s[1:3] for s in agent_states(result)] == [
        ("available", None),
        ("available", None),
        ("not_ready", "lunch"),
        ("available", None),
    ]


def test_paused_during_a_call_is_on_call_then_not_ready() -> None:
    """An agent that pauses while talking stays on_call until the call ends, then is not
    ready with its reason (Asterisk writes PAUSEALL, then a PAUSE per queue)."""
    result = qlog(
        ADD,
        ENTER,
        CONNECT,
        f"{T0 + 20}|NONE|NONE|SIP/100|PAUSEALL|",
        f"{T0 + 20}|NONE|sales|SIP/100|PAUSE|wrap",
        f"{T0 + 60}|c1|sales|SIP/100|COMPLETEAGENT|4|55|1",
    )
    assert [s[1:3] for s in agent_states(result)] == [
        ("available", None),
        ("on_call", None),
        ("not_ready", "wrap"),
    ]


def test_a_call_end_always_gives_the_agent_a_next_state() -> None:
    """The end of a call is followed by the agent's state, even unchanged (logged off during
    the call), so its handling completes at the end: queue_log has no after-call work."""
    result = qlog(
        ADD,
        ENTER,
        CONNECT,
        f"{T0 + 20}|NONE|sales|SIP/100|REMOVEMEMBER|",
        f"{T0 + 60}|c1|sales|SIP/100|COMPLETECALLER|4|55|1",
    )
    assert kinds(result)[-2:] == ["call_ended", "agent_state:logged_out"]
    assert agent_states(result)[-2:] == [("100", "logged_out", None, [])] * 2


def test_an_answer_logs_in_an_agent_the_log_never_added() -> None:
    """A static member (never ADDMEMBER) appears at its first answered call, serving that
    queue, and is available after it."""
    result = qlog(ENTER, CONNECT, f"{T0 + 60}|c1|sales|SIP/100|COMPLETECALLER|4|55|1")
    assert [s[1:] for s in agent_states(result)] == [
        ("on_call", None, ["sales"]),
        ("available", None, ["sales"]),
    ]


def test_outbound_calls_of_an_agent_never_logged_in_say_nothing() -> None:
    """PBXware's outbound verbs of an agent that never logged in give no event; an explicit
    logoff of an agent never seen does."""
    result = qlog(
        f"{T0}|o1|NONE|Agent/1130|OUTDIAL|1109",
        f"{T0 + 5}|o1|NONE|Agent/1130|OUTANSWER|1109|COMPLETEAGENT",
        f"{T0 + 9}|c9|NONE|Agent/1131|AGENTCALLBACKLOGOFF|hint:1131@default|100",
    )
    assert agent_states(result) == [("1131", "logged_out", None, [])]


def test_a_restart_ends_the_calls_asterisk_lost() -> None:
    """QUEUESTART: callers waiting when Asterisk went down are dequeued, conversations end,
    agents keep their queues (persistent members)."""
    result = qlog(
        ADD,
        ENTER,
        CONNECT,
        f"{T0 + 6}|c2|sales|NONE|ENTERQUEUE||5551112222|1",
        f"{T0 + 30}|NONE|NONE|NONE|QUEUESTART|",
    )
    tail = [plain(e) for e, o in zip(result.events, result.origins, strict=True) if o == 4]
    assert [(e["type"], e["call_id"] if "call_id" in e else e["state"]) for e in tail] == [
        ("call_ended", "c1"),
        ("call_dequeued", "c2"),
        ("agent_state", "available"),
    ]


def test_sites_come_from_the_configured_queues() -> None:
    """Call events carry their queue's configured site; agents the site of their first
    queue; other queues the default site."""
    options = FeedOptions(default_site="hq", queue_sites={"sales": "ny"})
    result = qlog(ADD, ENTER, f"{T0 + 2}|c2|other|NONE|ENTERQUEUE||5551|1", options=options)
    assert [(type(e).__name__, e.site) for e in result.events] == [
        ("AgentState", "ny"),
        ("CallQueued", "ny"),
        ("CallQueued", "hq"),
    ]


# ---- ids, state, resends -----------------------------------------------------------------


LOG = [
    ADD,
    ENTER,
    CONNECT,
    f"{T0 + 5}|c1|sales|SIP/100|CONNECT|4|c1.9|2",
    f"{T0 + 60}|c1|sales|SIP/100|COMPLETECALLER|4|55|1",
    f"{T0 + 61}|NONE|NONE|SIP/100|PAUSEALL|",
    f"{T0 + 61}|NONE|NONE|SIP/100|PAUSEALL|",
]


def test_ids_are_the_same_in_every_run_and_unique() -> None:
    """Ids come from each line's position and content: the same file gives the same ids in
    another run, and no two events share one (identical lines at other positions)."""
    first = [e.id for e in qlog(*LOG).events]
    assert first == [e.id for e in qlog(*LOG).events]
    assert len(set(first)) == len(first)
    offset = len(ADD) + 1  # ENTERQUEUE, the second line
    assert first[1] == event_id("ql", offset, ENTER.encode()) + ".0"


def test_a_reread_after_a_crash_gives_the_same_events() -> None:
    """A mapper restored from a checkpointed state (encoded as a live source would) and fed
    the lines after it gives exactly the events, ids included, of one uninterrupted run."""
    text = "".join(line + "\n" for line in LOG)
    whole = feed_text(QueueLogMapper(), text)
    cut = text.index(LOG[3])
    before = QueueLogMapper()
    first = feed_text(before, text[:cut])
    blob = msgspec.msgpack.encode(before.snapshot())
    after = QueueLogMapper()
    after.restore(msgspec.msgpack.decode(blob, type=AsteriskState))

    lines, offsets, _ = LineSplitter(offset=cut).push(text[cut:].encode())
    second = after.feed(lines, offsets)
    assert first.events + second.events == whole.events


def test_the_snapshot_is_a_copy() -> None:
    """Feeding on after a snapshot does not change the snapshot."""
    mapper = QueueLogMapper()
    feed_text(mapper, ADD + "\n")
    snap = mapper.snapshot()
    feed_text(mapper, ENTER + "\n")
    assert snap.calls == {}
    assert mapper.snapshot().calls != {}


def test_a_call_whose_end_never_came_is_forgotten_after_a_day() -> None:
    """A conversation whose COMPLETE line was lost frees its agent a day later."""
    result = qlog(
        ADD,
        ENTER,
        CONNECT,
        f"{T0 + 90_000}|NONE|NONE|NONE|CONFIGRELOAD|",
        f"{T0 + 90_001}|c7|sales|NONE|ENTERQUEUE||555|1",
    )
    assert kinds(result)[-2:] == ["agent_state:available", "call_queued"]


def test_events_are_valid_canonical_events() -> None:
    """What the mapper makes encodes and decodes as canonical events unchanged."""
    from callfloor.events import Event

    events = qlog(*LOG).events
    decoded = msgspec.json.decode(msgspec.json.encode(events), type=list[Event])
    assert decoded == events
    assert isinstance(events[1], CallQueued)
    assert shapes(qlog(ENTER))[0]["ts"] == float(T0 + 1)


def test_the_parse_stage_gives_records_and_sets_the_rest_aside() -> None:
    """parse_lines: fields split, epoch checked, verb recognised; records in line order, the
    data fields joined as written (None without any), bad lines and skipped verbs apart."""
    lines = [
        f"{T0}|c1| sales |SIP/100| CONNECT |4|c1.9|2".encode(),
        b"oops|c2|sales|NONE|ENTERQUEUE||5559876543|1",
        f"{T0}|NONE|NONE|NONE|CONFIGRELOAD".encode(),
        f"{T0}|c3|sales|SIP/100".encode(),
        f"{T0}|c3|sales|NONE|BEAM|x".encode(),
        f"{T0 + 1}.5|NONE|sales|SIP/100|ADDMEMBER|".encode(),
        f"{T0 + 2}|NONE|NONE|SIP/100|PAUSEALL".encode(),
        f"{T0 + 3}|c1|sales|NONE|ENTERQUEUE|url|555\xe9|1".encode("latin-1"),
    ]
    parsed = parse_lines(lines)
    assert parsed.records == [
        (0, float(T0), "CONNECT", "c1", "sales", "SIP/100", "4|c1.9|2"),
        (5, T0 + 1.5, "ADDMEMBER", "NONE", "sales", "SIP/100", ""),
        (6, T0 + 2.0, "PAUSEALL", "NONE", "NONE", "SIP/100", None),
        (7, T0 + 3.0, "ENTERQUEUE", "c1", "sales", "NONE", "url|555\ufffd|1"),
    ]
    assert [(r[0], r[2], r[3], r[5]) for r in parsed.rejected] == [
        (1, "ENTERQUEUE", "invalid_ts", None),
        (3, None, "malformed_line", float(T0)),
        (4, "BEAM", "unknown_verb", float(T0)),
    ]
    assert parsed.rejected[0][1] == [
        "oops",
        "c2",
        "sales",
        "NONE",
        "ENTERQUEUE",
        "",
        "5559876543",
        "1",
    ]
    assert parsed.skipped == {"CONFIGRELOAD": 1}

"""Amazon Connect: agent event stream records and EventBridge contact events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from feedutil import feed_text, kinds, plain

from callfloor.config import parse_config
from callfloor.feeds.base import FeedOptions, MapResult
from callfloor.feeds.connect import ConnectMapper
from callfloor.replay import replay_document

ARN = "arn:aws:connect:us-east-1:012345678901:instance/inst"
AGENT = f"{ARN}/agent/agent-1"
SALES = f"{ARN}/queue/q-sales"
SUPPORT = f"{ARN}/queue/q-support"


def snapshot(
    status: str = "Available", contacts: list[dict[str, Any]] | None = None, kind: str | None = None
) -> dict[str, Any]:
    agent_status: dict[str, Any] = {"Name": status, "ARN": f"{ARN}/agent-state/x"}
    if kind is not None:
        agent_status["Type"] = kind
    return {
        "AgentStatus": agent_status,
        "Configuration": {
            "FirstName": "Ada",
            "LastName": "Lovelace",
            "Username": "ada",
            "AgentHierarchyGroups": {"Level1": {"Name": "EMEA"}, "Level2": {"Name": "Blue"}},
            "RoutingProfile": {
                "InboundQueues": [
                    {"ARN": SALES, "Name": "Sales"},
                    {"ARN": SUPPORT, "Name": "Support"},
                    {"ARN": f"{ARN}/queue/agent/agent-1", "Name": None},
                ]
            },
        },
        "Contacts": contacts or [],
    }


def contact(state: str, cid: str = "k1") -> dict[str, Any]:
    return {
        "ContactId": cid,
        "Channel": "VOICE",
        "State": state,
        "Queue": {"ARN": SALES, "Name": "Sales"},
    }


def agent_event(
    kind: str,
    ts: str,
    current: dict[str, Any] | None,
    previous: dict[str, Any] | None = None,
    eid: str = "e1",
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "AgentARN": AGENT,
        "EventId": eid,
        "EventTimestamp": ts,
        "EventType": kind,
        "Version": "2017-10-01",
    }
    if current is not None:
        record["CurrentAgentSnapshot"] = current
    if previous is not None:
        record["PreviousAgentSnapshot"] = previous
    return record


def contact_event(kind: str, cid: str = "k1", eid: str = "b1", **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": eid,
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "time": "2026-11-23T09:00:00Z",
        "detail": {
            "eventType": kind,
            "contactId": cid,
            "channel": "VOICE",
            "initiationMethod": "INBOUND",
            **detail,
        },
    }


def connect(*records: Any, options: FeedOptions | None = None) -> MapResult:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    return feed_text(ConnectMapper(options), text)


TS = "2026-11-23T09:00:00.500Z"
EPOCH = 1795424400.5


@pytest.mark.parametrize(
    ("current", "state", "reason"),
    [
        (snapshot(), "available", None),
        (snapshot("Offline"), "logged_out", None),
        (snapshot("Lunch"), "not_ready", "Lunch"),
        (snapshot("Pause", kind="ROUTABLE"), "available", None),
        (snapshot("Gone", kind="OFFLINE"), "logged_out", None),
        (snapshot(contacts=[contact("CONNECTING")]), "ringing", None),
        (snapshot(contacts=[contact("INCOMING")]), "ringing", None),
        (snapshot(contacts=[contact("CONNECTED")]), "on_call", None),
        (snapshot(contacts=[contact("CONNECTED_ONHOLD")]), "on_call", None),
        (snapshot(contacts=[contact("ENDED")]), "wrap_up", None),
        (snapshot("Break", contacts=[contact("ENDED")]), "wrap_up", None),
        (snapshot(contacts=[contact("MISSED")]), "not_ready", "missed"),
        (snapshot(contacts=[contact("ENDED", "k1"), contact("CONNECTED", "k2")]), "on_call", None),
    ],
)
def test_the_snapshot_decides_the_agent_state(
    current: dict[str, Any], state: str, reason: str | None
) -> None:
    """Contacts first (connected, ringing, after-call work, missed), then the status."""
    result = connect(agent_event("STATE_CHANGE", TS, current))
    states = [e for e in result.events if type(e).__name__ == "AgentState"]
    assert [(e.state, e.reason, e.ts) for e in states] == [(state, reason, EPOCH)]


def test_queues_team_and_name_come_from_the_configuration() -> None:
    """Inbound queues (not the agent's own queue), the deepest hierarchy level, the name;
    [connect] names replace ids."""
    result = connect(
        agent_event("HEART_BEAT", TS, snapshot()),
        options=FeedOptions(connect_queues={"q-sales": "sales"}, queue_sites={"sales": "lon"}),
    )
    assert plain(result.events[0]) == {
        "type": "agent_state",
        "agent": "agent-1",
        "state": "available",
        "queues": ["sales", "q-support"],
        "team": "Blue",
        "name": "Ada Lovelace",
        "ts": EPOCH,
        "site": "lon",
    }
    assert result.events[0].id == "cn-e1.0"


def test_logout_heartbeat_and_unknown_kinds() -> None:
    """LOGOUT is logged_out; HEART_BEAT repeats the state (it keeps the agent from going
    stale); an event type added later is skipped, not rejected."""
    result = connect(
        agent_event("LOGOUT", TS, snapshot(), eid="e1"),
        agent_event("HEART_BEAT", TS, snapshot(), eid="e2"),
        agent_event("AGENT_PROFILE_CHANGE", TS, snapshot(), eid="e3"),
    )
    assert kinds(result) == ["agent_state:logged_out", "agent_state:available"]
    assert result.skipped == {"AGENT_PROFILE_CHANGE": 1}


def test_a_newly_missed_contact_is_a_missed_call_once() -> None:
    """A contact MISSED in this snapshot and not in the previous one is a call_missed; the
    next snapshot that still shows it adds none."""
    missed = snapshot(contacts=[contact("MISSED")])
    result = connect(
        agent_event("STATE_CHANGE", TS, missed, snapshot(contacts=[contact("CONNECTING")])),
        agent_event("HEART_BEAT", TS, missed, missed, eid="e2"),
    )
    assert kinds(result) == ["call_missed", "agent_state:not_ready", "agent_state:not_ready"]
    assert plain(result.events[0]) == {
        "type": "call_missed",
        "call_id": "k1",
        "agent": "agent-1",
        "queue": "q-sales",
        "reason": "no_answer",
        "ts": EPOCH,
        "site": "default",
    }


def test_contact_events_are_call_events() -> None:
    """QUEUED, CONNECTED_TO_AGENT and DISCONNECTED are the call's leg and conversation, at
    the detail's own timestamps; ids come from the EventBridge id."""
    queue = {"queueArn": SALES, "enqueueTimestamp": "2026-11-23T09:00:01Z"}
    agent = {"agentArn": AGENT, "connectedToAgentTimestamp": "2026-11-23T09:00:09Z"}
    result = connect(
        contact_event("INITIATED"),
        contact_event("QUEUED", queueInfo=queue, eid="b2"),
        contact_event("CONNECTED_TO_AGENT", queueInfo=queue, agentInfo=agent, eid="b3"),
        contact_event(
            "DISCONNECTED",
            queueInfo=queue,
            agentInfo=agent,
            eid="b4",
            disconnectTimestamp="2026-11-23T09:03:00Z",
            disconnectReason="CUSTOMER_DISCONNECT",
        ),
    )
    assert [(plain(e)["type"], e.ts, e.id) for e in result.events] == [
        ("call_queued", 1795424401.0, "cn-b2.0"),
        ("call_answered", 1795424409.0, "cn-b3.0"),
        ("call_ended", 1795424580.0, "cn-b4.0"),
    ]
    assert result.skipped == {"INITIATED": 1}


@pytest.mark.parametrize(
    ("reason", "kind", "why"),
    [
        ("CUSTOMER_DISCONNECT", "call_abandoned", None),
        (None, "call_abandoned", None),
        ("CONTACT_FLOW_DISCONNECT", "call_dequeued", "other"),
        ("EXPIRED", "call_dequeued", "timeout"),
    ],
)
def test_a_contact_that_left_the_queue_unanswered(
    reason: str | None, kind: str, why: str | None
) -> None:
    """Disconnected while queued: the customer hung up (abandoned) or the flow or Connect
    ended it (dequeued)."""
    detail: dict[str, Any] = {
        "queueInfo": {"queueArn": SALES},
        "disconnectTimestamp": "2026-11-23T09:01:00Z",
    }
    if reason is not None:
        detail["disconnectReason"] = reason
    event = plain(connect(contact_event("DISCONNECTED", **detail)).events[0])
    assert (event["type"], event.get("reason")) == (kind, why)


def test_contacts_that_never_queue_are_skipped() -> None:
    """Outbound contacts, and contacts that never reached a queue, give no call events."""
    result = connect(
        contact_event(
            "CONNECTED_TO_AGENT", initiationMethod="OUTBOUND", agentInfo={"agentArn": AGENT}
        ),
        contact_event("DISCONNECTED", disconnectTimestamp="2026-11-23T09:01:00Z"),
    )
    assert result.events == []
    assert result.skipped == {"CONNECTED_TO_AGENT": 1, "DISCONNECTED": 1}


def test_bare_details_callbacks_and_capitalised_keys() -> None:
    """A contact event without its EventBridge envelope, a callback, and the capitalised
    key spelling of some AWS samples (QueueInfo, AgentInfo) all map."""
    bare = {
        "eventType": "QUEUED",
        "contactId": "k9",
        "channel": "VOICE",
        "initiationMethod": "CALLBACK",
        "QueueInfo": {"QueueArn": SALES, "EnqueueTimestamp": "2026-11-23T09:00:00Z"},
    }
    result = connect(bare)
    assert plain(result.events[0])["channel"] == "callback"
    assert result.events[0].id is not None and result.events[0].id.startswith("cn-0-")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "malformed_line"),
        ({"hello": "world"}, "unknown_verb"),
        (agent_event("STATE_CHANGE", "yesterday", snapshot()), "invalid_ts"),
        (agent_event("STATE_CHANGE", "2026-11-23T09:00:00", snapshot()), "invalid_ts"),
        ({**agent_event("STATE_CHANGE", TS, snapshot()), "AgentARN": ""}, "missing_field"),
        (agent_event("STATE_CHANGE", TS, None), "missing_field"),
        (contact_event("QUEUED"), "missing_field"),
        (
            contact_event("QUEUED", queueInfo={"queueArn": SALES, "enqueueTimestamp": "x"})
            | {"time": None},
            "invalid_ts",
        ),
    ],
)
def test_bad_records_are_rejected(record: Any, reason: str) -> None:
    """Records that are not JSON objects, of no known kind, without a readable time or a
    needed field are rejected with their reason; the good one after still maps."""
    result = connect(record, agent_event("HEART_BEAT", TS, snapshot(), eid="ok"))
    assert [r.reason for r in result.rejected] == [reason]
    assert kinds(result) == ["agent_state:available"]


def test_a_connect_floor_gets_queue_numbers_and_after_call_work(tmp_path: Path) -> None:
    """Contact events give offered, answered, abandoned and service level; the agent
    stream's ENDED contact is after-call work that counts in the handle time."""
    queue = {"queueArn": SALES, "enqueueTimestamp": "2026-11-23T09:00:00Z"}
    late = {"queueArn": SALES, "enqueueTimestamp": "2026-11-23T09:00:30Z"}
    agent = {"agentArn": AGENT, "connectedToAgentTimestamp": "2026-11-23T09:00:10Z"}
    records = [
        agent_event("LOGIN", "2026-11-23T08:59:00Z", snapshot(), eid="a0"),
        contact_event("QUEUED", queueInfo=queue, eid="b1"),
        agent_event(
            "STATE_CHANGE",
            "2026-11-23T09:00:10Z",
            snapshot(contacts=[contact("CONNECTED")]),
            eid="a1",
        ),
        contact_event("CONNECTED_TO_AGENT", queueInfo=queue, agentInfo=agent, eid="b2"),
        contact_event("QUEUED", "k2", queueInfo=late, eid="b3"),
        contact_event(
            "DISCONNECTED",
            "k2",
            queueInfo=late,
            eid="b4",
            disconnectTimestamp="2026-11-23T09:01:00Z",
        ),
        contact_event(
            "DISCONNECTED",
            queueInfo=queue,
            agentInfo=agent,
            eid="b5",
            disconnectTimestamp="2026-11-23T09:02:10Z",
        ),
        agent_event(
            "STATE_CHANGE", "2026-11-23T09:02:10Z", snapshot(contacts=[contact("ENDED")]), eid="a2"
        ),
        agent_event("STATE_CHANGE", "2026-11-23T09:02:40Z", snapshot(), eid="a3"),
    ]
    path = tmp_path / "connect.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    doc = replay_document([path], parse_config({}), fmt="connect")
    window = doc["queues"]["q-sales"]["windows"]["15m"]
    # k1 waited 10 s and talked 120 s with 30 s of after-call work; k2 hung up after 30 s.
    assert (window["offered"], window["answered"], window["abandoned"]) == (2, 1, 1)
    assert (window["sl_offered"], window["answered_in_sl"]) == (2, 1)
    assert window["asa_s"] == 10.0
    assert window["aht_s"] == 150.0
    assert doc["agents"]["agent-1"]["state"] == "available"

"""Decoding bodies into canonical events, rejecting bad events one by one."""

from __future__ import annotations

import pytest

from callfloor.events import AgentState, CallQueued
from callfloor.ingest.decode import Rejection, decode_body, decode_line


def test_rfc3339_ts_becomes_epoch_seconds() -> None:
    """An RFC 3339 time with an offset decodes to the same instant in epoch seconds."""
    ev = decode_line(
        b'{"type":"call_queued","ts":"2026-11-22T09:15:03.250+08:00","call_id":"c","queue":"q"}'
    )
    assert isinstance(ev, CallQueued)
    assert ev.ts == 1795310103.25


def test_integer_ts_is_accepted() -> None:
    """An integer epoch time is a valid ts."""
    ev = decode_line(b'{"type":"agent_state","ts":1795310103,"agent":"a","state":"available"}')
    assert isinstance(ev, AgentState)
    assert ev.ts == 1795310103.0


@pytest.mark.parametrize(
    ("line", "reason", "field"),
    [
        (b'{"type":"call_parked","ts":1,"call_id":"c"}', "unknown_type", "type"),
        (b'{"type":"call_queued","ts":1,"queue":"q"}', "missing_field", "call_id"),
        (b'{"type":"call_queued","ts":1,"call_id":7,"queue":"q"}', "wrong_type", "call_id"),
        (b'{"type":"agent_state","ts":1,"agent":"a","state":"asleep"}', "invalid_value", "state"),
        (b'{"type":"call_queued","ts":"yesterday","call_id":"c","queue":"q"}', "invalid_ts", "ts"),
        (
            b'{"type":"call_queued","ts":"2026-11-22T09:15:03","call_id":"c","queue":"q"}',
            "invalid_ts",
            "ts",
        ),
        (b'{"type":"call_queued","ts":1,"call_id":"","queue":"q"}', "invalid_value", "call_id"),
        (
            b'{"type":"call_queued","ts":1,"call_id":"c","queue":"q","channel":"fax"}',
            "invalid_value",
            "channel",
        ),
        (b'{"type":"call_queued"', "invalid_json", None),
        (b"[1]", "not_an_object", None),
    ],
)
def test_rejection_names_the_field(line: bytes, reason: str, field: str | None) -> None:
    """Each kind of invalid event gets a reason code and a message naming the field."""
    rej = decode_line(line, 3)
    assert isinstance(rej, Rejection)
    assert rej.reason == reason
    assert rej.field == field
    assert rej.index == 3
    if field is not None:
        assert f"`{field}`" in rej.message


def test_rejection_keeps_a_readable_ts() -> None:
    """A rejected event with a readable ts keeps it, so replay can apply its --at cut."""
    rej = decode_line(b'{"type":"agent_state","ts":1795310103,"agent":"a","state":"asleep"}')
    assert isinstance(rej, Rejection) and rej.ts == 1795310103.0


def test_array_body_keeps_valid_events_next_to_invalid_ones() -> None:
    """A JSON array with one bad element still yields the good elements."""
    events, rejections = decode_body(
        b'[{"type":"call_queued","ts":1,"call_id":"c1","queue":"q"},'
        b'{"type":"call_queued","ts":1,"queue":"q"},'
        b'{"type":"call_abandoned","ts":2,"call_id":"c1"}]'
    )
    assert [type(e).__name__ for e in events] == ["CallQueued", "CallAbandoned"]
    assert [(r.index, r.reason) for r in rejections] == [(1, "missing_field")]


def test_ndjson_body_with_blank_and_bad_lines() -> None:
    """NDJSON lines decode independently; blank lines are skipped."""
    events, rejections = decode_body(
        b'{"type":"call_queued","ts":1,"call_id":"c1","queue":"q"}\n\n'
        b"not json\n"
        b'{"type":"call_abandoned","ts":2,"call_id":"c1"}\n'
    )
    assert len(events) == 2
    assert [(r.index, r.reason) for r in rejections] == [(2, "invalid_json")]


def test_single_object_over_several_lines() -> None:
    """A pretty-printed single object is one event, not NDJSON."""
    events, rejections = decode_body(
        b'{\n  "type": "call_queued",\n  "ts": 1,\n  "call_id": "c1",\n  "queue": "q"\n}\n'
    )
    assert len(events) == 1 and not rejections


def test_unknown_extra_fields_are_ignored() -> None:
    """Producers may add fields: an unknown field does not make an event invalid."""
    ev = decode_line(b'{"type":"call_queued","ts":1,"call_id":"c","queue":"q","ani":"555"}')
    assert isinstance(ev, CallQueued)


def test_broken_array_is_one_rejection() -> None:
    """An array that is not valid JSON is rejected as a whole with invalid_json."""
    events, rejections = decode_body(b'[{"type":"call_queued"')
    assert events == [] and [r.reason for r in rejections] == ["invalid_json"]


def test_bad_first_ndjson_line_does_not_hide_the_rest() -> None:
    """A broken first NDJSON line is one rejection; the valid lines after it still decode."""
    events, rejections = decode_body(
        b'{oops\n{"type":"call_queued","ts":1,"call_id":"c1","queue":"q"}\n'
    )
    assert len(events) == 1
    assert [(r.index, r.reason) for r in rejections] == [(0, "invalid_json")]


def test_type_of_the_wrong_json_type_is_wrong_type() -> None:
    """A numeric `type` is a mistyped field, not an unknown event type."""
    rej = decode_line(b'{"type":5,"ts":1,"call_id":"c","queue":"q"}')
    assert isinstance(rej, Rejection) and (rej.reason, rej.field) == ("wrong_type", "type")


def test_empty_queue_name_in_an_agent_list_is_rejected() -> None:
    """An agent's `queues` list may not name an empty queue."""
    rej = decode_line(
        b'{"type":"agent_state","ts":1,"agent":"a","state":"available","queues":[""]}'
    )
    assert isinstance(rej, Rejection) and rej.reason == "invalid_value"


def test_far_future_event_in_a_body_is_refused_with_its_index() -> None:
    """With not_after, an event later than it is rejected as ts_in_future at its position."""
    events, rejections = decode_body(
        b'{"type":"call_queued","ts":1,"call_id":"c1","queue":"q"}\n'
        b'{"type":"call_queued","ts":999,"call_id":"c2","queue":"q"}\n',
        not_after=100.0,
    )
    assert len(events) == 1
    assert [(r.index, r.reason, r.field) for r in rejections] == [(1, "ts_in_future", "ts")]

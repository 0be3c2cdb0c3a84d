"""Hostile bodies: decoding never raises, answers stay small, good events beside bad ones live."""

from __future__ import annotations

import msgspec
from helpers import T0, ev

from callfloor.ingest.decode import (
    LISTED_REJECTIONS,
    MESSAGE_MAX,
    Rejection,
    decode_body,
    decode_line,
    decode_request,
)

GOOD = msgspec.json.encode(ev("call_queued", T0, call_id="c1", queue="q"))
GOOD2 = msgspec.json.encode(ev("call_queued", T0, call_id="c2", queue="q"))


def test_deeply_nested_line_is_rejected_as_invalid_json() -> None:
    """A line nested deeper than the decoder allows is one invalid_json rejection, not an error."""
    rej = decode_line(b'{"type":"call_queued","x":' * 100_000, 4)
    assert isinstance(rej, Rejection)
    assert (rej.reason, rej.index) == ("invalid_json", 4)
    assert "nested" in rej.message


def test_deep_element_of_an_array_keeps_the_good_events_beside_it() -> None:
    """In a JSON array, a deeply nested element is rejected and the elements around it decode."""
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    body = b"[" + GOOD + b"," + deep + b"," + GOOD2 + b"]"
    events, rejections = decode_body(body)
    assert [e.call_id for e in events] == ["c1", "c2"]  # type: ignore[union-attr]
    assert [(r.index, r.reason) for r in rejections] == [(1, "invalid_json")]


def test_unclosed_deep_array_is_rejected_whole_after_the_good_ones() -> None:
    """An array whose last element never closes rejects that element; earlier ones decode."""
    body = b"[" + GOOD + b"," + b'{"a":[' * 100_000
    events, rejections = decode_body(body)
    assert len(events) == 1
    assert [(r.index, r.reason) for r in rejections] == [(1, "invalid_json")]


def test_deep_ndjson_line_keeps_the_other_lines() -> None:
    """In NDJSON, a deeply nested line is rejected and the lines around it decode."""
    body = GOOD + b"\n" + b'{"a":' * 50_000 + b"\n" + GOOD2 + b"\n"
    decoded = decode_request(body)
    assert [decoded.positions, decoded.rejected_by_reason] == [[0, 2], {"invalid_json": 1}]


def test_request_decoding_lists_the_first_rejections_and_counts_the_rest() -> None:
    """Of 5,000 invalid lines the answer lists the first LISTED_REJECTIONS, and counts all."""
    body = b"x\n" * 2500 + GOOD + b"\n" + b"{}\n" * 2500
    decoded = decode_request(body)
    assert len(decoded.rejections) == LISTED_REJECTIONS
    assert decoded.rejections[0].index == 0
    assert decoded.rejected_total == 5000
    assert decoded.rejected_by_reason == {"invalid_json": 2500, "missing_field": 2500}
    assert decoded.positions == [2500]


def test_request_decoding_matches_body_decoding() -> None:
    """The fast request decoder finds the same events and rejections as decode_body."""
    lines = [GOOD, b"", b'{"type":"nope","ts":1}', b"  ", GOOD2, b"[1]", b'{"type":"call_queued"']
    body = b"\n".join(lines)
    events, rejections = decode_body(body, not_after=T0 + 1)
    decoded = decode_request(body, not_after=T0 + 1)
    assert decoded.events == events
    assert [(r.index, r.reason, r.field) for r in decoded.rejections] == [
        (r.index, r.reason, r.field) for r in rejections
    ]
    assert decoded.positions == [0, 4]


def test_huge_value_in_a_message_is_cut() -> None:
    """A rejection message never carries a megabyte value back to the sender."""
    line = msgspec.json.encode(ev("agent_state", T0, agent="a", state="x" * 1_000_000))
    rej = decode_line(line)
    assert isinstance(rej, Rejection)
    assert rej.reason == "invalid_value"
    assert len(rej.message) <= MESSAGE_MAX


def test_future_events_are_rejected_with_their_position() -> None:
    """decode_request rejects events after not_after as ts_in_future at their own index."""
    future = msgspec.json.encode(ev("call_queued", T0 + 999, call_id="c", queue="q"))
    body = b"[" + GOOD + b"," + future + b"]"
    decoded = decode_request(body, not_after=T0 + 10)
    assert decoded.positions == [0]
    assert [(r.index, r.reason) for r in decoded.rejections] == [(1, "ts_in_future")]

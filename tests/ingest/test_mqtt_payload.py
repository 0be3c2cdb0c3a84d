"""MQTT payloads to events: the topic's site, the payload forms, limits and dead letters."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
from helpers import T0, ev
from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.ingest.decode import decode_body
from callfloor.ingest.mqtt_payload import (
    EMPTY,
    TOO_LARGE,
    TOO_MANY,
    Message,
    SiteRule,
    _with_site,
    dead_letter,
    deadletter_topic,
    decode_message,
    matches,
    refused_letter,
    site_of,
)

LIMITS = {"max_bytes": 1 << 20, "max_events": 1000}


def _encode(*events: dict[str, Any]) -> bytes:
    return b"\n".join(msgspec.json.encode(e) for e in events)


def test_plus_of_the_filter_is_the_site() -> None:
    """The level the first `+` matched is the site; a filter without `+` gives none."""
    assert site_of("callfloor/+/events", "callfloor/sh/events") == "sh"
    assert site_of("acd/+/+/events", "acd/sh/floor2/events") == "sh"
    assert site_of("callfloor/events", "callfloor/events") is None
    assert site_of("callfloor/+/events", "callfloor//events") is None


def test_filters_match_like_a_broker() -> None:
    """`+` is one level, `#` the rest, `$share/<group>/` is not part of the filter."""
    assert matches("callfloor/+/events", "callfloor/sh/events")
    assert not matches("callfloor/+/events", "callfloor/sh/x/events")
    assert matches("callfloor/#", "callfloor/sh/events")
    assert matches("$share/g/callfloor/+/events", "callfloor/sh/events")
    assert not matches("+/x", "$SYS/x")


def test_site_rule_takes_the_first_matching_filter_with_a_plus() -> None:
    """With several filters, the first one that matches and has a `+` decides the site."""
    rule = SiteRule(("plain/events", "acd/+/events", "acd/#"))
    assert rule("acd/bj/events") == "bj"
    assert rule("plain/events") is None
    assert rule("acd/bj/other") is None


def test_site_is_set_only_where_an_event_names_none() -> None:
    """An event naming a site (even "default") keeps it; the others get the topic's."""
    payload = _encode(
        ev("call_queued", T0, call_id="c1", queue="q"),
        ev("call_queued", T0, call_id="c2", queue="q", site="bj"),
        ev("call_queued", T0, call_id="c3", queue="q", site="default"),
    )
    out = decode_message(payload, "sh", **LIMITS)
    assert [e.site for e in out.events] == ["sh", "bj", "default"]


def test_without_a_topic_site_events_keep_the_default() -> None:
    """A topic without a `+` site leaves events to their own site or "default"."""
    out = decode_message(_encode(ev("call_queued", T0, call_id="c", queue="q")), None, **LIMITS)
    assert [e.site for e in out.events] == ["default"]


def test_an_escaped_site_key_is_still_a_named_site() -> None:
    """A key written with a JSON escape ("s\\u0069te") names the site like "site" does."""
    payload = b'{"type":"call_queued","ts":%d,"call_id":"c","queue":"q","s\\u0069te":"bj"}' % T0
    assert [e.site for e in decode_message(payload, "sh", **LIMITS).events] == ["bj"]


def test_one_object_an_array_and_ndjson_are_payloads() -> None:
    """A payload is one event, a JSON array of events or NDJSON (blank lines skipped)."""
    one = ev("call_queued", T0, call_id="c1", queue="q")
    two = ev("call_abandoned", T0 + 1, call_id="c1")
    for payload in (
        msgspec.json.encode([one, two]),
        _encode(one, two) + b"\n\n",
        b"\xef\xbb\xbf" + _encode(one, two),
    ):
        for site in (None, "sh"):
            assert len(decode_message(payload, site, **LIMITS).events) == 2


def test_good_events_beside_a_bad_one_are_kept() -> None:
    """The valid items of a message go in; each invalid one is listed with its reason."""
    payload = (
        _encode(ev("call_queued", T0, call_id="c1", queue="q")) + b'\n{"type":"call_queued"}\n'
    )
    out = decode_message(payload, "sh", **LIMITS)
    assert len(out.events) == 1 and not out.dead
    [bad] = out.rejections
    assert (bad.index, bad.reason, bad.item) == (1, "missing_field", b'{"type":"call_queued"}')
    assert out.rejected_by_reason == {"missing_field": 1}


def test_a_message_without_a_valid_event_is_dead() -> None:
    """Garbage is one invalid_json rejection and the message is dead-lettered whole."""
    out = decode_message(b"not json", "sh", **LIMITS)
    assert out.dead and not out.events and out.rejected_by_reason == {"invalid_json": 1}


def test_limits_refuse_the_whole_message() -> None:
    """Over max_body, over max_request_events, or empty: nothing is taken, the reason says why."""
    big = decode_message(b"x" * 101, "sh", max_bytes=100, max_events=10)
    many = decode_message(
        _encode(*(ev("call_queued", T0, call_id=f"c{i}", queue="q") for i in range(11))),
        "sh",
        max_bytes=1 << 20,
        max_events=10,
    )
    empty = decode_message(b" \n ", "sh", **LIMITS)
    assert (big.failure, many.failure, empty.failure) == (TOO_LARGE, TOO_MANY, EMPTY)
    assert "[limits] max_body" in big.failure_message
    assert "[limits] max_request_events" in many.failure_message
    assert not many.events and many.dead


def test_events_ahead_of_the_allowed_skew_are_rejected() -> None:
    """An event later than not_after is a ts_in_future rejection (both decode paths)."""
    payload = _encode(ev("call_queued", T0 + 100, call_id="c", queue="q"))
    for site in (None, "sh"):
        for body in (payload, payload.replace(b"}", b',"note":"site"}')):
            out = decode_message(body, site, not_after=T0, **LIMITS)
            assert out.rejected_by_reason == {"ts_in_future": 1}, (site, body)


def test_dead_letter_of_a_whole_message_keeps_the_payload() -> None:
    """A dead message's letter names the topic and reason and holds the payload as sent."""
    out = decode_message(b"not json", "sh", **LIMITS)
    letter = msgspec.json.decode(
        dead_letter(out, b"not json", source="mqtt", topic="callfloor/sh/events", received_at=5.0)
    )
    assert letter["topic"] == "callfloor/sh/events" and letter["reason"] == "invalid_json"
    assert letter["payload"] == "not json" and letter["accepted"] == 0
    assert deadletter_topic("sh") == "callfloor/sh/deadletter"
    assert deadletter_topic(None) == "callfloor/default/deadletter"


def test_dead_letter_of_binary_payload_is_base64() -> None:
    """A payload that is not UTF-8 is kept exactly, in base64."""
    raw = b"\xff\xfe\x00garbage"
    out = decode_message(raw, None, **LIMITS)
    letter = msgspec.json.decode(dead_letter(out, raw, source="m", topic="t", received_at=0.0))
    assert base64.b64decode(letter["payload_base64"]) == raw


def test_dead_letter_of_a_partial_message_lists_the_invalid_items() -> None:
    """With some events taken, the letter lists each invalid item as sent, not the payload."""
    payload = _encode(ev("call_queued", T0, call_id="c1", queue="q")) + b"\n[1]\n{bad"
    out = decode_message(payload, "sh", **LIMITS)
    letter = msgspec.json.decode(dead_letter(out, payload, source="m", topic="t", received_at=0.0))
    assert "payload" not in letter and letter["accepted"] == 1
    assert [(r["index"], r["reason"], r["item"]) for r in letter["rejected"]] == [
        (1, "not_an_object", "[1]"),
        (2, "invalid_json", "{bad"),
    ]


def test_refused_letter_lists_the_refused_events() -> None:
    """Events refused by a limit are listed with the refusal and the event itself."""
    event = decode_message(_encode(ev("call_queued", T0, call_id="c", queue="q")), "sh", **LIMITS)
    letter = msgspec.json.decode(
        refused_letter(
            [(0, "ts_too_old", "ts", "too old", event.events[0])],
            source="m",
            topic="t",
            received_at=0.0,
            accepted=2,
        )
    )
    assert letter["reason"] == "ts_too_old" and letter["accepted"] == 2
    assert msgspec.json.decode(letter["rejected"][0]["item"])["call_id"] == "c"


_ITEM = st.one_of(
    st.builds(
        lambda i, ts: ev("call_queued", T0 + ts, call_id=f"c{i}", queue="q"),
        st.integers(0, 5),
        st.integers(-100, 100),
    ),
    st.builds(lambda i: ev("agent_state", T0, agent=f"a{i}", state="available"), st.integers(0, 3)),
    st.sampled_from(
        [
            {"type": "call_queued", "ts": T0},
            {"type": "nope", "ts": T0},
            {"type": "agent_state", "ts": "yesterday", "agent": "a", "state": "available"},
            {"type": "agent_state", "ts": T0, "agent": "a", "state": "asleep"},
            [1, 2],
            7,
            "text",
        ]
    ),
)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(_ITEM, min_size=1, max_size=8), as_array=st.booleans())
def test_both_paths_decode_like_http(items: list[Any], as_array: bool) -> None:
    """With or without a site to set, a payload gives HTTP's events and rejection reasons."""
    payload = msgspec.json.encode(items) if as_array else _encode(*items)
    events, rejections = decode_body(payload, not_after=T0 + 50)
    want_events = [msgspec.structs.replace(e, site="sh") for e in events]
    want_reasons = [(r.index, r.reason, r.field) for r in rejections]
    fast = decode_message(payload, "sh", not_after=T0 + 50, **LIMITS)
    # An unknown field that mentions "site": the payload is probed for named sites.
    marked = payload.replace(b'"type"', b'"note":"site","type"')
    probed = decode_message(marked, "sh", not_after=T0 + 50, **LIMITS)
    values_first = Message()
    _with_site(marked, "sh", values_first, T0 + 50)
    for out in (fast, probed, values_first):
        assert out.events == want_events
        assert [(r.index, r.reason, r.field) for r in out.rejections] == want_reasons


@settings(max_examples=100, deadline=None)
@given(
    items=st.lists(
        st.builds(
            lambda i, named: ev(
                "call_queued", T0, call_id=f"c{i}", queue="q", **({"site": "bj"} if named else {})
            ),
            st.integers(0, 9),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
    as_array=st.booleans(),
    bad=st.booleans(),
)
def test_named_sites_are_kept_on_every_path(
    items: list[dict[str, Any]], as_array: bool, bad: bool
) -> None:
    """Each event keeps the site it names and takes the topic's otherwise, whichever path
    the payload takes (a non-object item sends it down the values-first path)."""
    listed: list[Any] = [*items, [1]] if bad else list(items)
    payload = msgspec.json.encode(listed) if as_array else _encode(*listed)
    out = decode_message(payload, "sh", **LIMITS)
    assert [e.site for e in out.events] == [item.get("site", "sh") for item in items]

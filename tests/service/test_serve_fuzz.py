"""Fuzz: random bytes, random JSON and random events with extreme values against `serve`.

One real subprocess takes every example; each answer must be a bounded JSON answer
with an expected status, and afterwards the process is up and /metrics parses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from serving import Served, request, serve

NOW = time.time()
EXPECTED = {202, 400, 413, 415}

_text = st.text(max_size=40) | st.sampled_from(["", "q", "a" * 300, "\u0000", "\U0001f600"])
_number = (
    st.floats(allow_nan=False)
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from([NOW - 30, NOW + 30, NOW + 1e6, 0, -1, 1e308, 32_503_680_000.0])
)
_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | _number | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_types = st.sampled_from(
    [
        "call_queued",
        "call_routed",
        "call_missed",
        "call_answered",
        "call_abandoned",
        "call_dequeued",
        "call_ended",
        "agent_state",
        "nope",
    ]
)
_event = st.fixed_dictionaries(
    {"type": _types, "ts": _number | _text},
    optional={
        "id": _text,
        "site": _text,
        "call_id": _text,
        "queue": _text,
        "agent": _text,
        "state": st.sampled_from(["available", "not_ready", "on_call", "x"]) | _text,
        "reason": _text,
        "queues": st.lists(_text, max_size=5) | _json,
        "team": _text,
        "name": _text,
        "channel": _text,
        "priority": _number,
        "extra": _json,
    },
)


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["bytes", "json", "events", "ndjson"]))
    ctype = draw(
        st.sampled_from(["application/x-ndjson", "application/json"])
        | st.sampled_from(["text/plain", "application/json; charset=utf-8", ""])
    )
    if kind == "bytes":
        return draw(st.binary(max_size=2000)), ctype
    if kind == "json":
        return msgspec.json.encode(draw(_json)), ctype
    events = draw(st.lists(_event, max_size=20))
    if kind == "events":
        return msgspec.json.encode(events), ctype
    return b"\n".join(msgspec.json.encode(e) for e in events), ctype


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("fuzz")) as s:
        yield s


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies())
def test_any_body_gets_a_bounded_json_answer(served: Served, body: tuple[bytes, str]) -> None:
    """Whatever is posted, the answer is JSON, under 1 MB, with an expected status."""
    data, ctype = body
    status, answer, _ = request(served.base + "/api/v1/events", data, ctype, timeout=10)
    assert status in EXPECTED, (status, answer[:300])
    assert len(answer) < 1024 * 1024
    json.loads(answer)


def test_after_the_fuzzing_the_process_is_up_and_metrics_parse(served: Served) -> None:
    """The fuzzed process still answers, and its /metrics is valid exposition text."""
    assert served.proc.poll() is None
    status, body, _ = request(served.base + "/metrics")
    assert status == 200 and len(body) < 5 * 1024 * 1024
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert "callfloor_events_rejected" in names
    assert served.get_json("/readyz")[0] == 200

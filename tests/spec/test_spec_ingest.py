# ruff: noqa: E501
"""SPEC §1 message bodies and rejection reasons (via callfloor.ingest.decode.decode_body)."""

from __future__ import annotations

import json

import pytest
from spec_util import T0

from callfloor.ingest.decode import decode_body

GOOD = {"type": "call_queued", "ts": T0, "call_id": "c1", "queue": "sales"}
GOOD2 = {"type": "call_abandoned", "ts": T0 + 9, "call_id": "c1"}


def test_body_single_object():
    """A body may carry one JSON object."""
    events, rejected = decode_body(json.dumps(GOOD).encode())
    assert (len(events), len(rejected)) == (1, 0)


def test_body_json_array():
    """A body may carry a JSON array of objects."""
    events, rejected = decode_body(json.dumps([GOOD, GOOD2]).encode())
    assert (len(events), len(rejected)) == (2, 0)


def test_body_ndjson():
    """A body may carry NDJSON (one object per line)."""
    body = (json.dumps(GOOD) + "\n" + json.dumps(GOOD2) + "\n").encode()
    events, rejected = decode_body(body)
    assert (len(events), len(rejected)) == (2, 0)


def _names(rejection, field):
    return getattr(rejection, "field", None) == field or field in str(
        getattr(rejection, "message", rejection)
    )


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "call_queued", "ts": T0, "call_id": "c1"}, "queue"),
        ({"type": "call_queued", "ts": "noon", "call_id": "c1", "queue": "q"}, "ts"),
        ({"type": "agent_state", "ts": T0, "agent": "a1", "state": "sleeping"}, "state"),
        (
            {"type": "agent_state", "ts": T0, "agent": "a1", "state": "available", "queues": "q"},
            "queues",
        ),
        ({"type": "call_flying", "ts": T0, "call_id": "c1"}, "type"),
    ],
    ids=["missing_queue", "bad_ts", "unknown_state", "mistyped_queues", "unknown_type"],
)
def test_rejection_names_field_and_batch_still_applies(bad, field):
    """Each invalid event is rejected with a reason naming the field; the valid ones of the batch are kept."""
    events, rejected = decode_body(json.dumps([GOOD, bad, GOOD2]).encode())
    assert len(events) == 2
    assert len(rejected) == 1
    assert _names(rejected[0], field), rejected[0]

"""Rejections of a badly sent ``ts`` say what the sender most likely did wrong."""

from __future__ import annotations

import pytest

from callfloor.ingest.decode import decode_request


def body(ts: str) -> bytes:
    return (
        b'{"type":"call_queued","id":"a","site":"s","call_id":"c","queue":"q","ts":'
        + ts.encode()
        + b"}"
    )


@pytest.mark.parametrize(
    ("ts", "hint"),
    [
        ('"1765100000"', "send a number of seconds (not a quoted one)"),
        ("1765100000000", "looks like milliseconds: send a number of seconds"),
    ],
)
def test_a_quoted_epoch_or_milliseconds_get_a_hint(ts: str, hint: str) -> None:
    """A quoted epoch and a millisecond epoch are rejected with a hint that says so."""
    (rejection,) = decode_request(body(ts)).rejections
    assert rejection.reason == "invalid_ts"
    assert hint in rejection.message


def test_a_negative_epoch_is_not_taken_for_milliseconds() -> None:
    """Only a value in the millisecond range is said to look like milliseconds."""
    (rejection,) = decode_request(body("-5")).rejections
    assert "milliseconds" not in rejection.message

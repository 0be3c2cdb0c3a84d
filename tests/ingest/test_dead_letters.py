"""Dead letters are bounded whatever was sent: a prefix, the size and a SHA-256.

A 48 MB message once gave a dead letter of about 290 MB (the payload JSON-escaped) that
the MQTT client refused: the source restarted and the broker redelivered it for ever.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec
from helpers import T0, ev
from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.ingest.mqtt_payload import dead_letter, decode_message, refused_letter

LIMITS = {"max_bytes": 16 * 1024 * 1024, "max_events": 100_000}


def _letter(payload: bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    out = decode_message(payload, "sh", **LIMITS)
    raw = dead_letter(
        out, payload, source="mqtt", topic="callfloor/sh/events", received_at=0.0, **kwargs
    )
    return len(raw), msgspec.json.decode(raw)


def test_an_oversized_message_keeps_a_prefix_its_size_and_hash() -> None:
    """48 MB of 0x01: refused unread (message_too_large); the letter keeps 4 KB (base64:
    JSON would escape each byte to six), the size and the SHA-256, in under 6 KB."""
    payload = b"\x01" * (48 * 1024 * 1024)
    size, letter = _letter(payload)
    assert size < 6 * 1024
    assert letter["reason"] == "message_too_large"
    assert base64.b64decode(letter["payload_base64"]) == payload[:4096]
    assert letter["payload_size"] == len(payload)
    assert letter["payload_sha256"] == hashlib.sha256(payload).hexdigest()
    assert letter["payload_truncated"] is True


def test_text_stays_text_and_is_cut_at_a_character_boundary() -> None:
    """A UTF-8 payload longer than the kept bytes stays text, never half a character."""
    payload = ("é" * 3000).encode()  # two bytes each: byte 4095 is half of one
    _, letter = _letter(payload + b"{", keep=4095)
    assert letter["payload"] == "é" * 2047 and letter["payload_truncated"] is True
    assert letter["payload_size"] == len(payload) + 1


def test_a_small_payload_is_kept_whole_with_its_hash() -> None:
    """Below the limit the whole payload is kept, not marked truncated."""
    _, letter = _letter(b"not json")
    assert letter["payload"] == "not json" and "payload_truncated" not in letter
    assert letter["payload_sha256"] == hashlib.sha256(b"not json").hexdigest()


def test_invalid_items_are_listed_within_the_budget() -> None:
    """500 invalid lines of 1 KB beside a valid event: 100 listed, their text 4 KB in all
    (cut ones say so, with their size), and every one counted."""
    good = msgspec.json.encode(ev("call_queued", T0, call_id="c", queue="q"))
    bad = b'{"type": "call_queued", "note": "' + b"x" * 1000 + b'"}'
    payload = b"\n".join([good, *([bad] * 500)])
    size, letter = _letter(payload)
    items = letter["rejected"]
    assert letter["accepted"] == 1 and letter["rejected_total"] == 500 and len(items) == 100
    assert sum(len(i.get("item", "")) for i in items) <= 4096
    cut = [i for i in items if i.get("item_truncated")]
    assert cut and all(i["item_size"] == len(bad) for i in cut)
    assert size < 64 * 1024


def test_refused_events_are_listed_within_the_budget() -> None:
    """A refusal letter of 10,000 events lists 100, their events 4 KB in all."""
    event = decode_message(
        msgspec.json.encode(ev("call_queued", T0, call_id="c" * 120, queue="q")), "sh", **LIMITS
    ).events[0]
    raw = refused_letter(
        [(i, "ts_too_old", "ts", "too old", event) for i in range(10_000)],
        source="m",
        topic="t",
        received_at=0.0,
        accepted=0,
    )
    letter = msgspec.json.decode(raw)
    assert letter["rejected_total"] == 10_000 and len(letter["rejected"]) == 100
    assert len(raw) < 64 * 1024


def test_a_letter_over_its_bound_drops_what_it_kept() -> None:
    """A topic so long the letter would pass the bound: the kept bytes go, size and hash
    stay, so the broker still takes it."""
    payload = b"\x00" * 10_000
    out = decode_message(payload, "sh", **LIMITS)
    raw = dead_letter(out, payload, source="m", topic="t" * 20_000, received_at=0.0, bound=8192)
    letter = msgspec.json.decode(raw)
    assert len(raw) <= 8192
    assert "payload" not in letter and "payload_base64" not in letter
    assert letter["payload_size"] == 10_000 and letter["payload_truncated"] is True


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=20_000), st.integers(1, 5000))
def test_any_payload_gives_a_bounded_letter_that_keeps_its_first_bytes(
    payload: bytes, keep: int
) -> None:
    """Whatever the bytes, the letter is valid JSON under the bound, its size and hash are
    the payload's, and what it keeps is the payload's first bytes."""
    out = decode_message(payload, "sh", **LIMITS)
    if not out.dead:
        return
    raw = dead_letter(out, payload, source="m", topic="t", received_at=0.0, keep=keep)
    letter = msgspec.json.decode(raw)
    assert len(raw) <= 64 * 1024
    assert letter["payload_size"] == len(payload)
    assert letter["payload_sha256"] == hashlib.sha256(payload).hexdigest()
    kept = (
        letter["payload"].encode()
        if "payload" in letter
        else base64.b64decode(letter.get("payload_base64", ""))
    )
    assert payload.startswith(kept) and len(kept) <= keep

"""Checkpoints: a restored processor continues exactly like the one that was saved."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from floorgen import (
    EventDict,
    decoded,
    document_at,
    floor_config,
    last_ts,
    processor_of,
    traces,
)
from helpers import T0, config, decode, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callfloor.config import Config
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document
from callfloor.processors.state import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    SECTIONS,
    CheckpointError,
    Section,
    decode_checkpoint,
    encode_checkpoint,
    register_section,
)
from callfloor.processors.views import NamePolicy

CFG = floor_config()


def restored(proc: FloorProcessor, cfg: Config | None = None, *, live: bool = False) -> Any:
    """A checkpoint of ``proc`` restored under ``cfg`` (default: its own configuration)."""
    return decode_checkpoint(cfg or proc.config, encode_checkpoint(proc), live=live)


def stats_of(proc: FloorProcessor) -> bytes:
    """The processor's self-metrics, comparable."""
    return msgspec.json.encode(proc.view.stats())


def envelope(blob: bytes) -> dict[str, Any]:
    """A checkpoint's envelope as plain data (after its fixed header)."""
    data: dict[str, Any] = msgspec.msgpack.decode(blob[HEADER_SIZE:])
    return data


def checkpoint_of(data: dict[str, Any], version: int = FORMAT_VERSION) -> bytes:
    """An envelope written back as a checkpoint of ``version``, with a checksum that
    matches it (what a callfloor writing such an envelope would produce)."""
    body = msgspec.msgpack.encode(data)
    ver = version.to_bytes(2, "big")
    return MAGIC + ver + hashlib.sha256(ver + body).digest() + body


# ----------------------------------------------------------------------------- round trips


def test_restored_processor_shows_the_same_floor() -> None:
    """A restored processor has the clock, version, document and stats of the original."""
    events = [
        ev("agent_state", T0, agent="a", state="available", queues=["q"], team="t", name="Ann"),
        ev("call_queued", T0 + 1, call_id="c", queue="q", id="e1"),
        ev("call_answered", T0 + 30, call_id="c", agent="a"),
        ev("agent_state", T0 + 40, agent="b", state="not_ready", reason="break"),
    ]
    proc = processor_of(events, CFG)
    proc.tick(T0 + 500)
    back = restored(proc)
    assert back.notes == [] and back.log_positions == {} and back.held == []
    p = back.processor
    assert (p.clock, p.version) == (proc.clock, proc.version)
    assert build_document(p) == build_document(proc)
    assert stats_of(p) == stats_of(proc)
    assert p.view.agent_info("a", names=NamePolicy.SHOW) == proc.view.agent_info(
        "a", names=NamePolicy.SHOW
    )


def test_log_positions_and_held_events_round_trip() -> None:
    """Log positions and held events come back as they were saved."""
    held = decoded([ev("call_queued", T0 + 9, call_id="h", queue="q", id="x")])
    proc = processor_of([ev("call_queued", T0, call_id="c", queue="q")], CFG)
    blob = encode_checkpoint(proc, log_positions={"a": "17-0", "log": "3:99"}, held=held)
    back = decode_checkpoint(CFG, blob)
    assert back.log_positions == {"a": "17-0", "log": "3:99"} and back.held == held


def test_event_ids_are_remembered_across_a_restore() -> None:
    """A redelivery after a restart is still a duplicate of the event with its id."""
    event = ev("call_queued", T0, call_id="c", queue="q", id="e1")
    p = restored(processor_of([event], CFG)).processor
    assert p.is_duplicate(decode(event))
    p.apply(decode(event))
    assert p.view.counters().duplicates == 1 and p.view.counters().events == 1


def test_empty_processor_round_trips() -> None:
    """A processor that has seen nothing restores to one that has seen nothing."""
    p = restored(FloorProcessor(CFG)).processor
    assert p.view.counters() == FloorProcessor(CFG).view.counters()
    assert p.view.queue_names() == ["q1", "q2", "q3"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(traces(), st.randoms(use_true_random=False), st.integers(0, 200), st.integers(0, 3))
def test_checkpoint_anywhere_then_the_rest_equals_the_uninterrupted_run(
    events: list[EventDict], rnd: random.Random, cut: int, ticks: int
) -> None:
    """Checkpoint at any point of any arrival order, restore, apply the rest: the same
    document (late counter included) and self-metrics as without the restart, now and
    after the clock moves on."""
    arrival = list(events)
    rnd.shuffle(arrival)
    k = cut % (len(arrival) + 1)
    first = processor_of(arrival[:k], CFG)
    whole = processor_of(arrival[:k], CFG)
    if k:  # the clock may have moved on a little before the checkpoint
        for p in (first, whole):
            p.tick(max(e["ts"] for e in arrival[:k]) + 20.0 * ticks)
    for e in arrival[k:]:
        whole.apply(decode(e))
    second = restored(first).processor
    for e in arrival[k:]:
        second.apply(decode(e))
    for later in (0.0, 130.0, 90_000.0):
        at = last_ts(events) + later
        assert document_at(second, at) == document_at(whole, at)
        assert stats_of(second) == stats_of(whole)


# ----------------------------------------------------------------------------- bad blobs


def test_bytes_that_are_no_checkpoint_are_refused_with_a_clear_error() -> None:
    """Garbage is a CheckpointError that says it is not a checkpoint."""
    with pytest.raises(CheckpointError, match="not a callfloor checkpoint"):
        decode_checkpoint(CFG, b"\xc1 definitely not msgpack")


def test_truncated_checkpoint_is_refused_as_damaged() -> None:
    """A checkpoint cut short is refused, never half restored."""
    blob = encode_checkpoint(processor_of([ev("call_queued", T0, call_id="c", queue="q")], CFG))
    with pytest.raises(CheckpointError):
        decode_checkpoint(CFG, blob[: len(blob) // 2])


def test_checkpoint_of_an_unknown_format_names_it_and_what_to_do() -> None:
    """A checkpoint of a format with no migration is refused with the version and advice."""
    data = envelope(encode_checkpoint(FloorProcessor(CFG)))
    data["format_version"] = 99
    with pytest.raises(CheckpointError, match=r"format 99 .*move the checkpoint aside"):
        decode_checkpoint(CFG, checkpoint_of(data, 99))


def test_well_formed_envelope_with_a_damaged_floor_is_refused() -> None:
    """An envelope of the right version whose floor does not match the schema is refused."""
    data = envelope(encode_checkpoint(FloorProcessor(CFG)))
    data["sections"]["floor"] = {"clock": "soon"}
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        decode_checkpoint(CFG, checkpoint_of(data))


# ----------------------------------------------------------------------------- changes


def test_other_time_zone_data_is_reported_not_refused() -> None:
    """A checkpoint from other tzdata restores, with a note saying days may shift."""
    data = envelope(encode_checkpoint(FloorProcessor(CFG)))
    data["tzdata_version"] = "1999z"
    back = decode_checkpoint(CFG, checkpoint_of(data))
    assert any("1999z" in note for note in back.notes)


def _threshold(seconds: int) -> Config:
    return config({"queues": {"q": {"sl_threshold_s": seconds, "short_abandon_s": 5}}})


def test_changed_policy_is_noted_and_the_histogram_restarts() -> None:
    """A new threshold is reported, and the queue's wait histogram restarts with its bounds."""
    events = [
        ev("call_queued", T0, call_id="c", queue="q"),
        ev("call_answered", T0 + 9, call_id="c", agent="a"),
    ]
    proc = processor_of(events, _threshold(20))
    back = restored(proc, _threshold(25))  # 25 s is not a standard bucket bound; 20 s is
    assert len(back.notes) == 3 and "histogram restarted" in back.notes[2]
    totals = back.processor.view.queue_totals("q")
    assert totals.answered.counts == [0] * len(totals.answered.counts)
    assert totals.counts["answered"] == 1  # lifetime counts are kept


def test_legs_keep_the_policy_they_were_counted_with() -> None:
    """After a restore under a longer threshold, a leg queued before it (even re-folded by
    a late event) is judged by its old threshold; a leg queued after it by the new one."""
    before = processor_of([ev("call_queued", T0, call_id="old", queue="q")], _threshold(20))
    p = restored(before, _threshold(60)).processor
    for e in [
        ev("call_answered", T0 + 40, call_id="old", agent="a"),
        ev("call_queued", T0 + 50, call_id="new", queue="q"),
        ev("call_answered", T0 + 90, call_id="new", agent="a"),
        ev("call_routed", T0 + 30, call_id="old", agent="a"),  # late: re-folds the old call
    ]:
        p.apply(decode(e))
    w = p.view.queue("q")
    assert w is not None
    today = w.windows["today"]
    assert (today.sl_offered, today.answered_in_sl) == (2, 1)


def test_restored_live_processor_keeps_refusing_old_events() -> None:
    """decode_checkpoint(live=True) gives a live processor: too-old events are refused."""
    live_cfg = floor_config(max_lateness="2m")
    proc = FloorProcessor(live_cfg, live=True)
    proc.apply(decode(ev("call_queued", T0, call_id="c", queue="q")))
    p = restored(proc, live=True).processor
    refusal = p.apply(decode(ev("call_abandoned", T0 - 121, call_id="c")))
    assert refusal is not None and refusal.reason == "ts_too_old"


def test_undrained_violation_changes_survive_a_restore() -> None:
    """A violation noticed before a checkpoint but not yet drained is reported after it."""
    proc = processor_of([ev("agent_state", T0, agent="a", state="wrap_up")], CFG)
    proc.drain_changes()
    proc.tick(T0 + 31)
    proc.view.stats()  # a metrics scrape looks at violations before the change set drains
    p = restored(proc).processor
    assert [v.kind for v in p.drain_changes().violations] == ["wrap_up_exceeded"]


def test_a_format_1_dump_is_refused_with_what_to_do() -> None:
    """callfloor 0.1's untyped dump (no header) is refused, saying to move it aside."""
    old = msgspec.msgpack.encode({"version": 1, "clock": 0.0, "queues": {}})
    with pytest.raises(CheckpointError, match=r"format-1 .*move it aside"):
        decode_checkpoint(CFG, old)


# ----------------------------------------------------------------------------- fingerprints


_FINGERPRINT = """
import sys
from callfloor.config import load_config
from callfloor.processors.state import config_fingerprint
print(config_fingerprint(load_config(sys.argv[1])))
"""


def test_the_configuration_fingerprint_is_the_same_in_every_process(tmp_path: Any) -> None:
    """Two processes with one configuration (sets in it) agree on its fingerprint, so a
    checkpoint saved by one is not noted as "configuration changed" by the other."""
    import os
    import subprocess
    import sys

    path = tmp_path / "callfloor.toml"
    path.write_text(
        '[agents]\nexempt_reasons = ["training", "meeting", "coaching", "one-to-one", "x"]\n'
    )
    found = {
        subprocess.run(
            [sys.executable, "-c", _FINGERPRINT, str(path)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout.strip()
        for seed in range(6)
    }
    assert len(found) == 1, found


def test_a_checkpoint_under_the_same_configuration_has_no_note() -> None:
    """Restoring under the configuration it was saved with notes nothing."""
    proc = FloorProcessor(CFG)
    assert restored(proc).notes == []


# ----------------------------------------------------------------------------- checksum


def test_no_one_bit_flip_anywhere_in_a_checkpoint_is_restored() -> None:
    """Every single-bit change of a checkpoint (header, checksum or body) is refused with
    a CheckpointError: none restores a silently different floor."""
    events = [
        ev("agent_state", T0, agent="a1", state="available", queues=["q1"], site="sh"),
        ev("call_queued", T0 + 1, call_id="c1", queue="q1", id="e1"),
        ev("call_answered", T0 + 9, call_id="c1", agent="a1"),
    ]
    blob = encode_checkpoint(processor_of(events, CFG), log_positions={"log": "1:99"})
    reasons: dict[str, int] = {}
    for bit in range(len(blob) * 8):
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CheckpointError) as refused:
            decode_checkpoint(CFG, bytes(flipped))
        reasons[refused.value.reason] = reasons.get(refused.value.reason, 0) + 1
    body_bits = (len(blob) - len(MAGIC) - 2) * 8
    assert reasons["checksum"] >= body_bits - 16  # the rest: the version's own bits


def test_a_checksum_mismatch_says_so_and_what_it_means() -> None:
    """The refusal of a changed checkpoint names the checksum, not a decoding detail."""
    blob = bytearray(encode_checkpoint(FloorProcessor(CFG)))
    blob[-1] ^= 0x40
    with pytest.raises(CheckpointError, match="SHA-256 does not match") as refused:
        decode_checkpoint(CFG, bytes(blob))
    assert refused.value.reason == "checksum"


def test_a_checkpoint_cut_within_its_header_is_refused_as_changed() -> None:
    """A checkpoint shorter than its own header is refused, never read as empty."""
    blob = encode_checkpoint(FloorProcessor(CFG))
    with pytest.raises(CheckpointError) as refused:
        decode_checkpoint(CFG, blob[: HEADER_SIZE - 1])
    assert refused.value.reason == "checksum"


def test_an_unknown_format_is_refused_for_its_format() -> None:
    """A format with no migration is told apart from damage (its metric label)."""
    data = envelope(encode_checkpoint(FloorProcessor(CFG)))
    with pytest.raises(CheckpointError) as refused:
        decode_checkpoint(CFG, checkpoint_of(data, 99))
    assert refused.value.reason == "format"


# ----------------------------------------------------------------------------- sections


class _Alerts(msgspec.Struct):
    """A feature's own checkpointed state (what the alerts issue would add)."""

    firing: dict[str, float] = {}
    sent: int = 0


@pytest.fixture
def alerts_section() -> Iterator[Section[_Alerts]]:
    """A section registered for one test (and taken out of the registry after it)."""
    section = register_section("test_alerts", _Alerts, _Alerts)
    try:
        yield section
    finally:
        del SECTIONS[section.name]


def test_a_registered_section_round_trips(alerts_section: Section[_Alerts]) -> None:
    """A feature's section, registered with one line, comes back as it was saved."""
    value = _Alerts({"sl_low:q1": T0}, 3)
    blob = encode_checkpoint(FloorProcessor(CFG), sections={alerts_section.name: value})
    back = decode_checkpoint(CFG, blob)
    assert back.section(alerts_section) == value
    assert back.notes == [] and back.unknown == {}


def test_a_section_the_checkpoint_lacks_reads_as_its_empty_value(
    alerts_section: Section[_Alerts],
) -> None:
    """A checkpoint written without a section (before its feature existed) restores,
    with that section's empty value."""
    back = decode_checkpoint(CFG, encode_checkpoint(FloorProcessor(CFG)))
    assert back.section(alerts_section) == _Alerts()


def test_a_section_written_by_a_newer_callfloor_is_kept_and_reported() -> None:
    """A section this callfloor does not know is no error: it is noted and kept as bytes."""
    data = envelope(encode_checkpoint(FloorProcessor(CFG)))
    data["sections"]["from_the_future"] = {"x": 1}
    back = decode_checkpoint(CFG, checkpoint_of(data))
    assert msgspec.msgpack.decode(back.unknown["from_the_future"]) == {"x": 1}
    assert any("'from_the_future' is not known" in note for note in back.notes)
    assert document_at(back.processor, T0) == document_at(FloorProcessor(CFG), T0)


def test_a_section_that_does_not_decode_is_refused_naming_it(
    alerts_section: Section[_Alerts],
) -> None:
    """A known section whose bytes do not decode as its type refuses the checkpoint."""
    data = envelope(encode_checkpoint(FloorProcessor(CFG)))
    data["sections"][alerts_section.name] = ["not", "a", "map"]
    with pytest.raises(CheckpointError, match="'test_alerts' section"):
        decode_checkpoint(CFG, checkpoint_of(data))


def test_a_checkpoint_without_a_floor_is_refused() -> None:
    """The floor section is the one a checkpoint cannot do without."""
    data = envelope(encode_checkpoint(FloorProcessor(CFG)))
    del data["sections"]["floor"]
    with pytest.raises(CheckpointError, match="no floor section"):
        decode_checkpoint(CFG, checkpoint_of(data))


def test_an_unregistered_section_cannot_be_written() -> None:
    """Encoding a section nobody registered (a typo) is a programming error, raised."""
    with pytest.raises(ValueError, match="not a registered checkpoint section"):
        encode_checkpoint(FloorProcessor(CFG), sections={"alertz": {}})


def test_a_section_name_is_registered_once(alerts_section: Section[_Alerts]) -> None:
    """Two features cannot share a section name."""
    with pytest.raises(ValueError, match="registered already"):
        register_section(alerts_section.name, dict[str, int], dict)


# ----------------------------------------------------------------------------- format 2

# tests/processors/data/checkpoint-format-2.bin was written by the landed format-2
# encoder (commit 5d51012) from these events under floorgen's configuration, ticked to
# V2_START + 300, with log positions {"log": "1:4096"} and V2_HELD held.
V2_START = 1_795_276_800.0 - 240.0
V2_EVENTS = [
    ev(
        "agent_state",
        V2_START,
        agent="a1",
        state="available",
        queues=["q1", "q2"],
        team="t1",
        name="Ann",
        site="sh",
    ),
    ev("agent_state", V2_START + 5, agent="a2", state="not_ready", reason="break", site="sh"),
    ev("call_queued", V2_START + 10, call_id="c1", queue="q1", id="e1"),
    ev("call_queued", V2_START + 15, call_id="c2", queue="q2", id="e2"),
    ev("call_answered", V2_START + 40, call_id="c1", agent="a1"),
    ev("call_abandoned", V2_START + 50, call_id="c2"),
    ev("call_ended", V2_START + 200, call_id="c1", agent="a1"),
    ev("agent_state", V2_START + 201, agent="a1", state="wrap_up", site="sh"),
    ev("call_queued", V2_START + 230, call_id="c3", queue="q3", id="e3"),
]
V2_HELD = [ev("call_queued", V2_START + 400, call_id="c4", queue="q1", id="h1")]
V2_FIXTURE = Path(__file__).parent / "data" / "checkpoint-format-2.bin"


def test_a_format_2_checkpoint_of_the_landed_release_still_loads() -> None:
    """A format-2 checkpoint (no checksum, one Struct) is migrated to format 3: the same
    floor, its source positions as log positions, its held events."""
    blob = V2_FIXTURE.read_bytes()
    assert blob.startswith(MAGIC) and int.from_bytes(blob[len(MAGIC) : len(MAGIC) + 2]) == 2
    back = decode_checkpoint(CFG, blob)
    expected = processor_of(V2_EVENTS, CFG)
    expected.tick(V2_START + 300)
    p = back.processor
    assert (p.clock, p.version) == (expected.clock, expected.version)
    assert back.log_positions == {"log": "1:4096"}
    assert back.held == decoded(V2_HELD)
    for at in (V2_START + 300, V2_START + 4000):
        assert document_at(p, at) == document_at(expected, at)
    assert stats_of(p) == stats_of(expected)


def test_a_migrated_format_2_checkpoint_is_written_back_as_format_3() -> None:
    """What a format-2 checkpoint restores to is saved (and restored again) as format 3."""
    back = decode_checkpoint(CFG, V2_FIXTURE.read_bytes())
    blob = encode_checkpoint(back.processor, log_positions=back.log_positions, held=back.held)
    assert int.from_bytes(blob[len(MAGIC) : len(MAGIC) + 2]) == FORMAT_VERSION == 3
    again = decode_checkpoint(CFG, blob)
    assert again.log_positions == back.log_positions and again.held == back.held
    assert build_document(again.processor) == build_document(back.processor)


def test_a_damaged_format_2_checkpoint_is_refused_not_crashed_on() -> None:
    """A format-2 checkpoint has no checksum: damage that breaks its structure is still
    a CheckpointError, never another exception."""
    blob = V2_FIXTURE.read_bytes()
    with pytest.raises(CheckpointError):
        decode_checkpoint(CFG, blob[: len(blob) - 7])

"""The simulator's output for a seed is pinned: refactors must not change a byte.

Benchmarks, docs and bug reports quote runs by their arguments ("seed 7, 200 agents"),
so the same arguments must keep giving the same bytes across refactors. If a change
to the floor's behaviour is deliberate, update the digests below in the same commit
and say why in its message.
"""

from __future__ import annotations

import hashlib

import msgspec

from callfloor.simulator import FloorSimulation, build_spec

START = 1795392000.0  # 2026-11-23T00:00:00Z, `callfloor simulate`'s default start

# `callfloor simulate --seed 7 --agents 24 --queues 5 --sites 2 --duration 6h
#  --duplicates 0.05`, recorded before the simulator was split into modules; ids name
# the run's start since (issue 13: a second simulated day is not all duplicates).
EVENTS_SHA256 = "0b14b30d37a4f9df1e47ec60793f765e9425705f7bf9cba948e48bb98c50bddd"
CONFIG_SHA256 = "b7a203871cbd874ef9134b5bb9645fb5a8664bf02928ef0ad62c8fdc52b2a6eb"


def _small_floor() -> FloorSimulation:
    return FloorSimulation(build_spec(agents=24, queues=5, sites=2, seed=7, duplicate_rate=0.05))


def test_events_of_a_small_floor_are_byte_identical_to_the_recorded_run() -> None:
    """Six hours of a 24-agent floor encode to exactly the recorded NDJSON bytes."""
    events = list(_small_floor().events(START, 6 * 3600.0))
    ndjson = msgspec.json.Encoder().encode_lines(events)
    assert hashlib.sha256(ndjson).hexdigest() == EVENTS_SHA256


def test_config_of_a_small_floor_is_byte_identical_to_the_recorded_one() -> None:
    """The floor's configuration file is exactly the recorded TOML."""
    toml = _small_floor().config_toml().encode()
    assert hashlib.sha256(toml).hexdigest() == CONFIG_SHA256

"""Review: the demo's clock (its warm-up must not run ahead of the wall clock)."""

from __future__ import annotations

from helpers import T0
from live import FakeClock

from callfloor.ingest.simulated import demo_setup
from callfloor.processors.engine import FloorProcessor


async def test_the_demo_warm_up_stops_at_the_wall_clock() -> None:
    """The warm-up holds only events up to now, so the live clock starts at the wall
    clock; the first later event is not lost: the simulator source sends it first."""
    wall = FakeClock(T0 + 3 * 3600)  # a working hour on the simulated floor
    setup = demo_setup(wall=wall)
    assert setup.warmup
    assert all(e.ts <= wall.t for e in setup.warmup)  # type: ignore[operator]
    proc = FloorProcessor(setup.config, live=True)
    proc.apply_all(setup.warmup)
    assert proc.clock <= wall.t

    wall.t += 60
    batches = aiter(setup.source)
    first = await anext(batches)
    warm_ids = {e.id for e in setup.warmup}
    assert first.events and not warm_ids & {e.id for e in first.events}
    assert wall.t - 60 < first.events[0].ts <= wall.t  # type: ignore[operator]

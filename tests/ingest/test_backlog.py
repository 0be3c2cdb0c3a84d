"""Back-pressure by events: reservations against a capacity, waiting sources, readiness."""

from __future__ import annotations

import asyncio

from callfloor.ingest.backlog import Backlog


def test_reservations_beyond_capacity_are_refused_and_saturate() -> None:
    """try_reserve takes what fits and refuses the rest, marking the backlog saturated."""
    backlog = Backlog(10)
    assert backlog.try_reserve(6) and backlog.try_reserve(4)
    assert not backlog.try_reserve(1)
    assert backlog.saturated and backlog.pending == 10


def test_saturation_clears_at_ninety_percent() -> None:
    """Saturated stays set until pending falls to 90 % of capacity (no flapping)."""
    backlog = Backlog(10)
    backlog.try_reserve(10)
    backlog.try_reserve(1)
    backlog.release(0)
    assert backlog.saturated
    backlog.release(1)
    assert not backlog.saturated


async def test_reserve_waits_for_release() -> None:
    """An in-process source waits in reserve() until enough is released."""
    backlog = Backlog(3)
    backlog.try_reserve(3)
    waiter = asyncio.create_task(backlog.reserve(2))
    await asyncio.sleep(0)
    backlog.release(1)
    await asyncio.sleep(0)
    assert not waiter.done()
    backlog.release(1)
    await asyncio.wait_for(waiter, 1)
    assert backlog.pending == 3


async def test_an_oversized_batch_waits_for_an_empty_backlog() -> None:
    """A batch larger than the capacity goes alone once nothing else is pending."""
    backlog = Backlog(3)
    backlog.try_reserve(1)
    waiter = asyncio.create_task(backlog.reserve(5))
    await asyncio.sleep(0)
    assert not waiter.done()
    backlog.release(1)
    await asyncio.wait_for(waiter, 1)
    assert backlog.pending == 5

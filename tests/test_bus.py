"""The change bus: bounded per-subscriber queues; a slow subscriber is dropped and counted."""

from __future__ import annotations

import asyncio

from callfloor.bus import ChangeBus
from callfloor.processors.views import ChangeSet


def _changes(t: float, agents: list[str] | None = None) -> ChangeSet:
    return ChangeSet(as_of=t, queues=[], sites=[], agents=agents or [], violations=[])


async def test_every_subscriber_gets_every_change_set_in_order() -> None:
    """Two subscribers each receive every published change set, in order."""
    bus = ChangeBus()
    a, b = bus.subscribe("sse"), bus.subscribe("wallboard")
    for t in (1.0, 2.0):
        bus.publish(_changes(t, ["x"]))
    bus.close()
    assert [c.as_of async for c in a] == [1.0, 2.0]
    assert [c.as_of async for c in b] == [1.0, 2.0]


async def test_a_full_subscriber_is_dropped_and_counted_the_others_go_on() -> None:
    """Publishing to a full queue drops that subscriber (counted by kind), never waits."""
    dropped: dict[str, int] = {}
    bus = ChangeBus(dropped)
    slow = bus.subscribe("sse", maxsize=2)
    fast = bus.subscribe("wallboard", maxsize=2)
    bus.publish(_changes(1.0))
    bus.publish(_changes(2.0))
    assert (await fast.get()) is not None and (await fast.get()) is not None
    bus.publish(_changes(3.0))  # slow holds two already
    assert dropped == {"sse": 1, "wallboard": 0}
    assert slow.dropped and (await slow.get()) is None
    assert [c.as_of for c in [await fast.get()]] == [3.0]  # type: ignore[union-attr]
    assert len(bus) == 1


async def test_a_waiting_subscriber_wakes_on_publish() -> None:
    """get() waits until something is published."""
    bus = ChangeBus()
    sub = bus.subscribe("sse")
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    bus.publish(_changes(5.0))
    got = await asyncio.wait_for(waiter, 1)
    assert got is not None and got.as_of == 5.0


async def test_unsubscribe_ends_the_subscription() -> None:
    """An unsubscribed subscription ends and receives nothing more."""
    bus = ChangeBus()
    sub = bus.subscribe("sse")
    bus.unsubscribe(sub)
    bus.publish(_changes(1.0))
    assert await sub.get() is None and len(bus) == 0


def test_a_subscriber_kind_is_counted_from_zero_at_its_first_subscription() -> None:
    """A kind's dropped counter exists at 0 once one subscriber of it has subscribed."""
    dropped: dict[str, int] = {}
    bus = ChangeBus(dropped)
    assert dropped == {}
    bus.unsubscribe(bus.subscribe("sse"))
    assert dropped == {"sse": 0}

"""Suite-wide guards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callfloor.processors import agents, calls


def _shared_empties() -> dict[str, object]:
    return {
        "agents._NO_VIOLATIONS": agents._NO_VIOLATIONS,
        "agents._NO_DAYS": agents._NO_DAYS,
        "agents._NOTHING_PENDING": agents._NOTHING_PENDING,
        "calls._NO_CONVERSATIONS": calls._NO_CONVERSATIONS,
        "calls._NOTHING_HELD": calls._NOTHING_HELD,
        "agents.EMPTY_BASE.closed": agents.EMPTY_BASE.closed,
        "agents.EMPTY_BASE.nr_days": agents.EMPTY_BASE.nr_days,
    }


@pytest.fixture(autouse=True)
def _shared_empty_lists_stay_empty() -> Iterator[None]:
    """The core shares empty lists between agents and calls until each needs its own;
    a test (or code) that appends to one would corrupt every other: fail it."""
    yield
    dirty = [name for name, value in _shared_empties().items() if value]
    assert not dirty, f"shared empty lists were mutated: {dirty}"
    base = agents.EMPTY_BASE
    assert not base.known and base.state is None, "the shared empty base fold was mutated"

"""Fixtures for the SPEC conformance suite (tests/spec)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spec_util import replay_in


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``run(events, toml=None, at=None)`` replays events and returns the §7 document."""
    counter = {"n": 0}

    def _run(events: list[Any], toml: str | None = None, at: float | None = None) -> dict[str, Any]:
        counter["n"] += 1
        d = tmp_path / f"r{counter['n']}"
        d.mkdir()
        return replay_in(d, events, toml, at)

    return _run

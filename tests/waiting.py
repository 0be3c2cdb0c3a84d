"""Waiting for a condition in tests: poll until it holds or fail naming what was awaited.

Tests wait for what they check instead of sleeping a fixed time: a stalled machine then
makes them slower, never wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def _timed_out(what: str, timeout: float) -> AssertionError:
    return AssertionError(f"{what}: not within {timeout} s" if what else f"not within {timeout} s")


def wait_until(check: Callable[[], object], timeout: float, what: str = "") -> float:
    """Poll ``check()`` every 20 ms, blocking, until it holds; the seconds it took."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise _timed_out(what, timeout)
        time.sleep(0.02)
    return time.monotonic() - began


async def until(check: Callable[[], object], timeout: float = 10.0, what: str = "") -> float:
    """Poll ``check()`` every 20 ms on the event loop until it holds; the seconds it took."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise _timed_out(what, timeout)
        await asyncio.sleep(0.02)
    return time.monotonic() - began

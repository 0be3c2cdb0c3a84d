"""Helpers (no tests): how much work a piece of the core does, counted, not timed.

:func:`bytecodes` counts the bytecode instructions that code in the given source files
executes (``sys.settrace`` with opcode events): deterministic, whatever the machine's
load, so a test can hold a complexity bound (what a late record costs must not grow
with the records after it) without a clock.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any


def bytecodes(work: Callable[[], object], paths: Iterable[str]) -> int:
    """Bytecode instructions ``work`` executes in functions defined in files whose path
    starts with one of ``paths`` (a file, or a directory with its trailing slash)."""
    count = 0
    watched = tuple(paths)

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if not frame.f_code.co_filename.startswith(watched):
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count
